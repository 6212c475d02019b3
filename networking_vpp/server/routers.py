"""Distributed (DVR) and HA routers are refused: networking-vpp serves routers
centrally, one L3 agent per router.

A DVR router's interface is one port bound on every host that hosts the
router (ML2's distributed port bindings), while our journal keeps one etcd
key per port: a second host's binding would delete the first host's key.

HA routers (``ha: true``, or ``l3_ha = True`` as the default) have the same
shape. Neutron 29 makes each of their interfaces a
``network:ha_router_replicated_interface`` port with a *distributed* binding:
one ``ml2_distributed_port_bindings`` row per host whose L3 agent hosts the
router (l3_hamode_db's ``ha_router_agent_port_bindings``), and every one of
those agents plugs the interface's device (``tap<port_id[:11]>``, the same
MAC and address on every host; keepalived keeps the address up on the master
only). ML2/OVS wires the device on each such host, because its agent wires
whatever device its host has for the port, whatever the binding host says.
Serving that here would take a key per (port, host) in etcd, bindings the
journal follows per host, and reports completed per host: what DVR needs too.
Until then an HA router would be half-wired: the standby hosts' devices
reach no VPP, keepalived's VRRP between the replicas never meets, every
replica makes itself master, and the address is answered from several hosts.
So HA routers are refused at the API with the reason, as DVR routers are, and
``bind_port`` declines replicated interfaces (a router made HA before the
driver was installed gets no half-wiring either).

This module refuses the routers at the API, whichever L3 plugin publishes the
router events (Neutron's own, whose L3 agent plugs tap ports into VPP, or ours).
"""

from __future__ import annotations

import logging
from typing import Any

from neutron_lib import exceptions as n_exc
from neutron_lib.api import validators
from neutron_lib.callbacks import events, priority_group, registry, resources

LOG = logging.getLogger(__name__)

REFUSED = (
    "networking-vpp does not implement distributed (DVR) routers: routers are "
    "served centrally (by Neutron's L3 agent or networking-vpp's router plugin). "
    "Create or keep the router with distributed=False."
)
DEFAULT_HINT = (
    " This router is distributed because neutron-server's default says so: set "
    "router_distributed = False in the [DEFAULT] section of neutron.conf."
)


HA_REFUSED = (
    "networking-vpp does not implement HA routers: each router is served by one L3 "
    "agent, and the replicas of an HA router on other hosts would not be wired into "
    "VPP. Create or keep the router with ha=False."
)
HA_DEFAULT_HINT = (
    " This router is HA because neutron-server's default says so: set l3_ha = False "
    "in the [DEFAULT] section of neutron.conf."
)


class DistributedRouterRefused(n_exc.BadRequest):
    """A router with ``distributed: true`` or ``ha: true`` (400)."""


def _refuse(message: str) -> None:
    LOG.warning("vpp: %s", message)
    raise DistributedRouterRefused(resource="router", msg=message)


def router_creating(resource: str, event: str, trigger: Any, payload: Any) -> None:
    """ROUTER BEFORE_CREATE: refuse a router that would be distributed.

    Neutron's DVR mixin decides the flag at PRECOMMIT_CREATE from the request,
    or from the ``router_distributed`` option when the request does not say;
    its own helper gives the same answer here, before anything is written.
    """
    # late: these pull in Neutron's L3 database code
    from neutron.db import l3_dvr_db, l3_hamode_db

    router = payload.latest_state
    if l3_dvr_db.is_distributed_router(router):
        asked = validators.is_attr_set(router.get("distributed"))
        _refuse(REFUSED if asked else REFUSED + DEFAULT_HINT)
    if l3_hamode_db.is_ha_router(router):
        asked = validators.is_attr_set(router.get("ha"))
        _refuse(HA_REFUSED if asked else HA_REFUSED + HA_DEFAULT_HINT)


def router_updating(resource: str, event: str, trigger: Any, payload: Any) -> None:
    """ROUTER PRECOMMIT_UPDATE: refuse a change to ``distributed: true`` or ``ha: true``.

    Router updates publish no BEFORE_UPDATE (the DVR mixin publishes one only
    for a migration it has already accepted); raising here rolls back the
    update's transaction, migration of the router's ports included.
    """
    body = payload.request_body or {}
    if body.get("distributed") is True:
        _refuse(REFUSED)
    if body.get("ha") is True:
        _refuse(HA_REFUSED)


def subscribe() -> None:
    """Register the callbacks (idempotent: the registry keys them by function)."""
    registry.subscribe(router_creating, resources.ROUTER, events.BEFORE_CREATE)
    # Before the DVR mixin's migration handler of the same event.
    registry.subscribe(
        router_updating,
        resources.ROUTER,
        events.PRECOMMIT_UPDATE,
        priority=priority_group.PRIORITY_ROUTER_EXTENDED_ATTRIBUTE - 1,
    )

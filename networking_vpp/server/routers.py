"""Distributed (DVR) routers are refused: networking-vpp serves routers centrally.

A DVR router's interface is one port bound on every host that hosts the
router (ML2's distributed port bindings), while our journal keeps one etcd
key per port: a second host's binding would delete the first host's key.
``bind_port`` declines such ports; this module refuses the routers themselves
at the API, whichever L3 plugin publishes the router events (Neutron's own,
whose L3 agent plugs tap ports into VPP, or ours).
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


class DistributedRouterRefused(n_exc.BadRequest):
    """A router with ``distributed: true`` (400)."""


def _refuse(message: str) -> None:
    LOG.warning("vpp: %s", message)
    raise DistributedRouterRefused(resource="router", msg=message)


def router_creating(resource: str, event: str, trigger: Any, payload: Any) -> None:
    """ROUTER BEFORE_CREATE: refuse a router that would be distributed.

    Neutron's DVR mixin decides the flag at PRECOMMIT_CREATE from the request,
    or from the ``router_distributed`` option when the request does not say;
    its own helper gives the same answer here, before anything is written.
    """
    from neutron.db import l3_dvr_db  # late: pulls in Neutron's L3 database code

    router = payload.latest_state
    if not l3_dvr_db.is_distributed_router(router):
        return
    asked = validators.is_attr_set(router.get("distributed"))
    _refuse(REFUSED if asked else REFUSED + DEFAULT_HINT)


def router_updating(resource: str, event: str, trigger: Any, payload: Any) -> None:
    """ROUTER PRECOMMIT_UPDATE: refuse a change to ``distributed: true``.

    Router updates publish no BEFORE_UPDATE (the DVR mixin publishes one only
    for a migration it has already accepted); raising here rolls back the
    update's transaction, migration of the router's ports included.
    """
    body = payload.request_body or {}
    if body.get("distributed") is True:
        _refuse(REFUSED)


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

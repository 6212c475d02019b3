"""What the tour, the system tests and the benchmark ask a running dev cloud.

Neutron through openstacksdk (``auth_type = none`` plus an endpoint override,
as noauth wants), etcd through the project's own client, each fake host's VPP
objects and the fake Nova's events through their small JSON endpoints.
"""

from __future__ import annotations

from typing import Any

import openstack
from openstack.connection import Connection
from openstack.network.v2.port import Port

from networking_vpp.agent.vpp import types as vpp_types
from networking_vpp.common import keys, model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.testing.devcloud import procs, web
from networking_vpp.testing.devcloud.cloud import DevCloud

VIF_PLUGGED = "network-vif-plugged"


class CloudClient:
    """Handles on every part of one running dev cloud."""

    def __init__(self, cloud: DevCloud) -> None:
        self.cloud = cloud
        self.keys = keys.KeySpace()
        self.neutron: Connection = openstack.connect(
            auth_type="none",
            auth={"endpoint": cloud.neutron_url},
            network_endpoint_override=cloud.neutron_url,
        )
        # Nova's calls (port bindings, binding:profile) need the service role, which
        # Nova's service token carries; noauth takes roles from the X-Roles header.
        self.nova: Connection = openstack.connect(
            auth_type="none",
            auth={"endpoint": cloud.neutron_url},
            network_endpoint_override=cloud.neutron_url,
        )
        self.nova.session.additional_headers["X-Roles"] = "admin,service"
        # root: the tour and the tests read every key and play any part
        self.etcd = EtcdClient(cloud.etcd_settings())

    def close(self) -> None:
        self.neutron.close()
        self.nova.close()
        self.etcd.close()

    # --- Neutron ---------------------------------------------------------------------
    def wait_port(self, port_id: str, status: str, timeout: float = 30.0) -> Port:
        """Poll the API until the port has ``status``."""
        return procs.wait_until(
            lambda: _if(self.neutron.network.get_port(port_id), lambda p: p.status == status),
            timeout,
            f"port {port_id} to be {status}",
            interval=0.05,
        )

    # --- etcd ----------------------------------------------------------------------------
    def etcd_items(self, prefix: str | None = None) -> list[tuple[str, bytes, int]]:
        """``(key, value, mod_revision)`` of every key under ``prefix`` (default: ours)."""
        kvs, _ = self.etcd.get_prefix(prefix or self.keys.prefix + "/")
        return [(kv.key, kv.value, kv.mod_revision) for kv in kvs]

    def binding(self, host: str, port_id: str) -> model.PortBinding | None:
        """The desired binding the journal wrote for ``port_id`` on ``host``."""
        kv = self.etcd.get(self.keys.port(host, port_id))
        return None if kv is None else model.decode(model.PortBinding, kv.key, kv.value)

    def port_state(self, host: str, port_id: str) -> model.PortState | None:
        """The agent's report on ``port_id``."""
        kv = self.etcd.get(self.keys.port_state(host, port_id))
        return None if kv is None else model.decode(model.PortState, kv.key, kv.value)

    # --- hosts and Nova ---------------------------------------------------------------
    def vpp(self, host: str) -> dict[str, Any]:
        """A host's VPP objects: ``interfaces``, ``bridge_domains``, ``vhost_user``."""
        return web.get_json(f"{self.cloud.host_url(host)}/vpp")

    def tagged(self, host: str, ident: str) -> list[str]:
        """VPP objects on ``host`` whose tag names ``ident`` (a port's or network's id).

        The agent tags what it creates ``net-vpp.<kind>:<id>@<host id>``: an interface
        per port, a bridge domain per network (and VLAN sub-interfaces per physnet and
        VLAN).
        """
        vpp = self.vpp(host)
        return [
            obj.get("name") or f"bridge domain {obj.get('bd_id')}"
            for obj in vpp["interfaces"] + vpp["bridge_domains"]
            if (vpp_types.parse_tag(obj.get("tag") or "") or ("",))[0].endswith(":" + ident)
        ]

    def nova_events(self, name: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
        """Events the fake Nova received (each with its ``received_at``)."""
        query = "&".join(f"{k}={v}" for k, v in (("name", name), ("tag", tag)) if v)
        return web.get_json(f"{self.cloud.nova_url}/events?{query}")["events"]

    def wait_nova_event(self, tag: str, name: str = VIF_PLUGGED, timeout: float = 15.0) -> dict:
        return procs.wait_until(
            lambda: next(iter(self.nova_events(name, tag)), None),
            timeout,
            f"{name} for {tag} at the fake Nova",
        )


def _if(value: Any, pred: Any) -> Any:
    return value if value is not None and pred(value) else None

"""A host rig: a real etcd, an emulated VPP with two uplink NICs, and agents.

The emulated VPP serves its API socket; agents and the rig's inspector reach it
through vpp_papi exactly as the production agent reaches VPP
(``agent.vpp.connect.vpp_adapter``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from networking_vpp.agent.agent import Agent, AgentSettings
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import VppAdapter, VppConnectionError
from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.common import keys as k
from networking_vpp.common import model, portnames
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.testing.vpp import VppEmulator
from networking_vpp.testing.vpp.socket_server import ApiServer
from networking_vpp.testing.wait import wait_for

UPLINK1 = "GigabitEthernet0/8/0"
UPLINK2 = "GigabitEthernet0/9/0"
PHYSNETS = {"physnet1": UPLINK1, "physnet2": UPLINK2}
KEYS = k.KeySpace()
SOCKET_DIR = "/run/vpp"  # the agents' vhost-user socket directory (not made: emulated)
HOST_TAGS = t.Tags.of("compute-1")  # the tags of the rigs' default host


def mark(body: str, host: str = "compute-1") -> str:
    """The VPP tag the agent of ``host`` gives the object ``body`` describes."""
    return t.Tags.of(host).mark(body)


def port_of(tag: str) -> str | None:
    """The port id of a port's tag (any host's, any format), or None."""
    parsed = t.parse_tag(tag)
    if parsed is None or not parsed[0].startswith(t.PORT_TAG):
        return None
    return parsed[0][len(t.PORT_TAG) :]


def binding(port_id: str = "p1", **over: object) -> model.PortBinding:
    """A vhost-user port on VLAN 100 of physnet1, with overrides."""
    fields: dict[str, object] = dict(
        port_id=port_id,
        binding_id=f"bind-{port_id}",
        network_id="net-a",
        mac_address="fa:16:3e:00:00:01",
        mtu=1500,
        network_type="vlan",
        physnet="physnet1",
        segmentation_id=100,
        binding_type="vhostuser",
        vhostuser=model.VhostUser(portnames.vhostuser_socket(SOCKET_DIR, port_id)),
        port_security_enabled=False,  # L2 tests; security group tests turn it on
    )
    fields.update(over)
    if fields["binding_type"] == "tap":
        fields["vhostuser"] = None
        if fields.get("tap") is None:
            fields["tap"] = model.Tap(f"tap{port_id[:11]}")
    return model.PortBinding(**fields)  # type: ignore[arg-type]


class HostRig:
    """One host: an emulated VPP and the agents started against it."""

    def __init__(self, etcd: EtcdClient, host: str = "compute-1") -> None:
        self.etcd = etcd
        self.host = host
        self._dir = Path(tempfile.mkdtemp(prefix="vpp-rig-"))  # short: a socket path
        self.socket = str(self._dir / "api.sock")
        self.api_dir = str(self._dir / "api")  # the .api.json files the server writes
        self._server: ApiServer | None = None
        self.vpp = VppEmulator(random_bd_ids=True)  # the agent must never guess ids
        self.vpp.add_hardware_interface(UPLINK1, "52:54:00:00:08:00")
        self.vpp.add_hardware_interface(UPLINK2, "52:54:00:00:09:00")
        self.agents: list[Agent] = []
        self._look: VppAdapter | None = None

    @property
    def vpp(self) -> VppEmulator:
        """The emulated VPP serving the rig's API socket."""
        return self._vpp

    @vpp.setter
    def vpp(self, emulator: VppEmulator) -> None:
        """Serve another emulator on the same socket (a test's own VPP)."""
        if self._server is not None:
            self._server.close()
        self._vpp = emulator
        self._server = ApiServer(emulator, self.socket, self.api_dir)

    def adapter(self, name: str = "vpp-agent") -> VppAdapter:
        """An adapter on the rig's VPP socket, made as ``vpp-agent`` makes its own."""
        return vpp_adapter(self.socket, self.api_dir, name)

    @property
    def look(self) -> VppAdapter:
        """A second API client that reads VPP's state the way an operator would."""
        if self._look is None or not self._look.connected:
            self._look = self.adapter("test-inspector")
            self._look.connect()
        return self._look

    def tags(self) -> set[str]:
        """Tags of every interface and bridge domain in VPP (reconnecting if VPP restarted)."""
        try:
            return self._tags()
        except VppConnectionError:
            self._look = None
            return self._tags()

    def _tags(self) -> set[str]:
        return {i.tag for i in self.look.dump_interfaces() if i.tag} | {
            bd.tag for bd in self.look.dump_bridge_domains() if bd.tag
        }

    def start_agent(self, etcd: EtcdClient | None = None, **over: object) -> Agent:
        settings = AgentSettings(
            host=self.host, physnets=dict(PHYSNETS), vpp_ping_interval=0.1, summary_interval=0.05
        )
        if "vhostuser_socket_dir" not in over:
            settings.vhostuser_socket_dir = SOCKET_DIR
            settings.make_vhostuser_socket_dir = False
        for name, value in over.items():
            setattr(settings, name, value)
        agent = Agent(settings, etcd or self.etcd, self.adapter())
        agent.start()
        self.agents.append(agent)
        return agent

    def stop_agents(self) -> None:
        while self.agents:
            self.agents.pop().stop()

    def close(self) -> None:
        """Stop the agents, the inspector and the socket."""
        self.stop_agents()
        if self._look is not None:
            self._look.disconnect()
        if self._server is not None:
            self._server.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def put(self, b: model.PortBinding, host: str | None = None) -> None:
        self.etcd.put(KEYS.port(host or self.host, b.port_id), model.encode(b))

    def delete(self, port_id: str) -> None:
        self.etcd.delete(KEYS.port(self.host, port_id))

    def state(self, port_id: str) -> model.PortState | None:
        kv = self.etcd.get(KEYS.port_state(self.host, port_id))
        return None if kv is None else model.decode(model.PortState, kv.key, kv.value)

    def wait_state(self, port_id: str, status: str = "active", timeout: float = 10.0):
        def check():
            s = self.state(port_id)
            return s if s is not None and s.status == status else None

        return wait_for(check, timeout, f"{port_id} reported {status}")


@pytest.fixture
def rig(etcd: EtcdClient) -> Iterator[HostRig]:
    r = HostRig(etcd)
    yield r
    r.close()

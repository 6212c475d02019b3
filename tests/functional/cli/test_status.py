"""``networking-vpp status`` against a real etcd, with a real agent on the VPP emulator."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from networking_vpp.cli import main as cli
from networking_vpp.common import model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.testing.wait import wait_for
from tests.functional.agent.conftest import KEYS, HostRig, binding

HOST = "compute-1"
GONE = "compute-9"  # a host with desired ports and no agent


@pytest.fixture
def rig(etcd: EtcdClient) -> Iterator[HostRig]:
    r = HostRig(etcd, HOST)
    yield r
    r.close()


def status(etcd: EtcdClient, *extra: str) -> tuple[int, str]:
    args = cli.parser().parse_args(
        ["status", "--etcd-endpoint", etcd.settings.endpoints[0], *extra]
    )
    out = io.StringIO()
    code = args.run(args, out)
    return code, out.getvalue()


def hosts(etcd: EtcdClient) -> dict[str, dict]:
    code, text = status(etcd, "--json")
    assert code == 0
    return {h["host"]: h for h in json.loads(text)["hosts"]}


def test_status_shows_alive_desired_programmed_and_errors(rig: HostRig, etcd: EtcdClient):
    agent = rig.start_agent()
    rig.put(binding("p1", mac_address="fa:16:3e:00:00:01"))
    rig.put(binding("p2", mac_address="fa:16:3e:00:00:02"))  # its VM never connects (yet)
    rig.put(binding("p3", mac_address="fa:16:3e:00:00:03", physnet="physnet9"))
    rig.vpp.vm_connect("/run/vpp/vhup1")
    rig.wait_state("p1")
    rig.wait_state("p3", "error")
    assert agent.wait_converged(10)
    # Another host: desired ports and no agent, a report from an earlier binding, an orphan.
    rig.put(binding("q1", binding_id="new"), host=GONE)
    old = model.PortState("q1", "old", "active")
    etcd.put(KEYS.port_state(GONE, "q1"), model.encode(old))
    etcd.put(KEYS.port_state(GONE, "q2"), model.encode(model.PortState("q2", "b", "active")))

    found = hosts(etcd)
    assert set(found) == {HOST, GONE}
    h = found[HOST]
    assert h["alive"] and h["agent_version"]
    assert h["ports"] == {
        "desired": 3, "programmed": 2, "reported": 3, "active": 1, "down": 1, "error": 1
    }  # fmt: skip
    assert h["errors"] == [
        {
            "port_id": "p3",
            "binding_id": "bind-p3",
            "reason": "physnet 'physnet9' is not mapped on this host",
        }
    ]
    assert h["down"] == [{"port_id": "p2", "binding_id": "bind-p2", "reason": "VM not connected"}]
    assert h["no_report"] == []
    assert h["drift"] == ["VPP has 2 port interfaces for 3 desired ports"]
    assert not h["healthy"]
    g = found[GONE]
    assert (g["alive"], g["ports"]["desired"], g["ports"]["programmed"]) == (False, 1, None)
    assert g["stale_reports"] == [{"port_id": "q1", "reported": "old", "desired": "new"}]
    assert g["orphan_reports"] == ["q2"]
    assert g["drift"] == ["no live agent, 1 ports desired"]

    code, text = status(etcd, "--check")
    assert code == 1
    assert "p3: physnet 'physnet9' is not mapped on this host" in text
    assert "down       p2: VM not connected" in text
    table = text.splitlines()[:3]
    assert table[0].split() == [
        "HOST", "AGENT", "DESIRED", "PROGRAMMED", "ACTIVE", "REPORTED", "ERROR", "STATE"
    ]  # fmt: skip
    assert table[1].split() == [HOST, "alive", "3", "2", "1", "3", "1", "CHECK"]
    assert table[2].split() == [GONE, "DOWN", "1", "-", "0", "2", "0", "CHECK"]


def test_status_healthy_once_everything_is_programmed(rig: HostRig, etcd: EtcdClient):
    agent = rig.start_agent()
    rig.put(binding("p1"))
    rig.put(binding("p2", physnet="physnet9"))
    rig.wait_state("p2", "error")
    rig.vpp.vm_connect("/run/vpp/vhup1")
    rig.delete("p2")
    rig.wait_state("p1")
    assert agent.wait_converged(10)
    wait_for(lambda: hosts(etcd)[HOST]["healthy"], 10, "a healthy host")
    code, text = status(etcd, "--check", "--host", HOST)
    assert code == 0
    assert text.splitlines()[1].split() == [HOST, "alive", "1", "1", "1", "1", "0", "ok"]
    # The agent goes: its lease is revoked, the host shows down with ports desired.
    rig.stop_agents()
    h = hosts(etcd)[HOST]
    assert not h["alive"] and not h["healthy"]
    assert h["drift"] == ["no live agent, 1 ports desired"]


def test_admin_down_ports_and_stopped_vms_are_not_flagged(rig: HostRig, etcd: EtcdClient):
    agent = rig.start_agent()
    rig.vpp.vm_connect("/run/vpp/vhup1")
    rig.put(binding("p1", mac_address="fa:16:3e:00:00:01"))
    rig.put(binding("p2", mac_address="fa:16:3e:00:00:02", admin_state_up=False))
    rig.put(binding("p3", mac_address="fa:16:3e:00:00:03"))  # its VM is stopped
    rig.wait_state("p1")
    rig.wait_state("p2", "down")
    rig.wait_state("p3", "down")
    assert agent.wait_converged(10)
    wait_for(lambda: hosts(etcd)[HOST]["healthy"], 10, "a healthy host")
    h = hosts(etcd)[HOST]
    assert [(d["port_id"], d["reason"]) for d in h["down"]] == [
        ("p2", "admin down"),
        ("p3", "VM not connected"),
    ]
    assert (h["ports"]["active"], h["ports"]["down"]) == (1, 2)
    code, text = status(etcd, "--check", "--host", HOST)
    assert code == 0, text
    assert "down       p2: admin down" in text

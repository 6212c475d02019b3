"""The agent survives restarts of itself, etcd and VPP, compaction and bad input."""

from __future__ import annotations

import threading

from networking_vpp.agent.cache import PortCache
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import VppConnectionError
from networking_vpp.common import model
from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.testing.proxy import TcpProxy
from networking_vpp.testing.wait import wait_for

from .conftest import KEYS, binding, mark, port_of


def test_agent_restart_with_nothing_changed_makes_no_mutating_vpp_call(rig):
    rig.vpp.add_kernel_interface("tapt1")
    first = rig.start_agent()
    for i in range(20):
        rig.put(
            binding(
                f"p{i}",
                mac_address=f"fa:16:3e:00:01:{i:02x}",
                segmentation_id=100 + i % 3,
                network_id=f"n{i % 3}",
            )
        )
    rig.put(
        binding(
            "f1", network_type="flat", segmentation_id=None, network_id="nf", physnet="physnet2"
        )
    )
    rig.put(binding("t1", binding_type="tap", network_id="n0"))
    for i in range(20):
        rig.vpp.vm_connect(f"/run/vpp/vhup{i}")
    wait_for(lambda: all(rig.state(f"p{i}") for i in range(20)), what="20 ports reported")
    assert first.wait_converged(10)
    assert first.vpp.mutations > 0
    reports = first.reporter.flushes
    rig.stop_agents()
    second = rig.start_agent()
    assert second.wait_converged(10)
    assert second.resyncs == 1
    assert len(second.inventory.ports) == 22
    assert second.vpp.mutations == 0
    assert second.reporter.flushes == 0  # and nothing rewritten in etcd either
    assert reports > 0


def test_agent_restart_removes_what_was_unbound_while_it_was_down(rig):
    first = rig.start_agent()
    rig.put(binding("keep"))
    rig.put(binding("gone", network_id="n-gone", segmentation_id=555))
    wait_for(lambda: len(first.inventory.ports) == 2)
    assert first.wait_converged(10)
    rig.stop_agents()
    rig.delete("gone")
    second = rig.start_agent()
    assert second.wait_converged(10)
    assert set(second.inventory.ports) == {"keep"}
    tags = {i.tag for i in second.vpp.dump_interfaces()}
    assert mark(t.UPLINK_TAG + "555" + t.EFP_MARK) not in tags
    assert [bd.tag for bd in second.vpp.dump_bridge_domains()] == [mark(t.NETWORK_TAG + "net-a")]


def test_etcd_killed_and_restarted_while_watching_loses_nothing(rig, etcd_server):
    agent = rig.start_agent(report_before_vm_connects=True)
    for i in range(10):
        rig.put(binding(f"a{i}", mac_address=f"fa:16:3e:00:02:{i:02x}"))
    etcd_server.kill()
    etcd_server.restart()
    for i in range(10):
        rig.put(binding(f"b{i}", mac_address=f"fa:16:3e:00:03:{i:02x}"))
    rig.delete("a0")
    want = {f"a{i}" for i in range(1, 10)} | {f"b{i}" for i in range(10)}
    wait_for(lambda: set(agent.inventory.ports) == want, timeout=20, what="all ports programmed")
    wait_for(lambda: all(rig.state(p) for p in want), timeout=20, what="all ports reported")
    assert rig.state("a0") is None


def test_compaction_past_the_agent_revision_reloads_and_converges(rig, etcd_server, etcd):
    proxy = TcpProxy("127.0.0.1", int(etcd_server.endpoint.rsplit(":", 1)[1]))
    try:
        agent_etcd = EtcdClient(EtcdSettings(endpoints=[proxy.endpoint], timeout=1.0))
        agent = rig.start_agent(etcd=agent_etcd, report_before_vm_connects=True)
        rig.put(binding("old1"))
        rig.put(binding("old2", network_id="n-old", segmentation_id=777))
        wait_for(lambda: rig.state("old1") and rig.state("old2"), what="first ports reported")
        loads = agent._watcher.loads
        proxy.cut()  # the agent loses etcd; the world moves on without it
        rig.delete("old2")
        rig.put(binding("new1", mac_address="fa:16:3e:00:04:01"))
        for i in range(5):  # churn, so that compaction has history to remove
            rig.put(binding("churn", mac_address=f"fa:16:3e:00:05:{i:02x}"))
        rig.delete("churn")
        etcd.compact(etcd.current_revision())
        proxy.restore()
        wait_for(
            lambda: set(agent.inventory.ports) == {"old1", "new1"},
            timeout=30,
            what="converged after compaction",
        )
        assert agent._watcher.loads == loads + 1
        wait_for(lambda: rig.state("new1"), what="new port reported")
        # Reports written while cut off arrive too; the dead port's report is gone.
        wait_for(lambda: rig.state("old2") is None, timeout=15, what="old2 report withdrawn")
        assert rig.tags() == {
            mark(t.PORT_TAG + "old1"),
            mark(t.PORT_TAG + "new1"),
            mark(t.UPLINK_TAG + "100" + t.EFP_MARK),
            mark(t.NETWORK_TAG + "net-a"),
            mark(t.GUARD_TAG),
        }
    finally:
        proxy.close()


def test_vpp_restart_reprograms_everything(rig):
    agent = rig.start_agent()
    rig.put(binding("p1"))
    rig.put(
        binding(
            "p2",
            mac_address="fa:16:3e:00:00:02",
            network_type="flat",
            segmentation_id=None,
            network_id="nf",
        )
    )
    rig.vpp.vm_connect("/run/vpp/vhup1")
    rig.vpp.vm_connect("/run/vpp/vhup2")
    rig.wait_state("p1")
    rig.wait_state("p2")
    rig.vpp.restart()
    wait_for(lambda: agent.resyncs >= 2, timeout=10, what="resync after VPP restart")
    want = {
        mark(t.PORT_TAG + "p1"),
        mark(t.PORT_TAG + "p2"),
        mark(t.UPLINK_TAG + "100" + t.EFP_MARK),
        mark(t.NETWORK_TAG + "net-a"),
        mark(t.NETWORK_TAG + "nf"),
        mark(t.GUARD_TAG),
    }
    wait_for(lambda: rig.tags() == want, timeout=10, what="everything recreated")
    # QEMU serves the sockets (the default role): VPP reconnects to the running
    # guests by itself, and every VM's link is back.
    wait_for(lambda: vm_links(rig) == {"p1": True, "p2": True}, what="every VM's link back")
    rig.wait_state("p1")
    rig.wait_state("p2")
    assert agent.wait_converged(10)


def vm_links(rig) -> dict[str, bool]:
    """Port id -> whether its vhost-user interface has a VM and its link is up."""
    try:
        vhosts = {v.sw_if_index: v for v in rig.look.dump_vhost_user()}
    except VppConnectionError:  # the inspector's connection died with VPP
        rig._look = None
        vhosts = {v.sw_if_index: v for v in rig.look.dump_vhost_user()}
    itfs = rig.look.dump_interfaces()
    return {
        port_of(i.tag): i.link_up and vhosts[i.sw_if_index].num_regions > 0
        for i in itfs
        if port_of(i.tag) and i.sw_if_index in vhosts
    }


def test_with_vpp_as_the_socket_server_a_vpp_restart_leaves_the_vms_cut_off(rig):
    # The other role: QEMU is VPP's client and Nova gives it no reconnect.
    agent = rig.start_agent()
    for port_id in ("s1", "s2"):
        socket = model.VhostUser(f"/run/vpp/vhu{port_id}", mode="server")
        rig.put(binding(port_id, vhostuser=socket, mac_address=f"fa:16:3e:00:06:{port_id[1]}0"))
        rig.vpp.vm_connect(socket.socket)
    rig.wait_state("s1")
    rig.wait_state("s2")
    assert vm_links(rig) == {"s1": True, "s2": True}
    rig.vpp.restart()
    wait_for(lambda: agent.resyncs >= 2, timeout=10, what="resync after VPP restart")
    assert agent.wait_converged(10)
    assert vm_links(rig) == {"s1": False, "s2": False}  # recreated, but no guest came back
    assert {rig.state(p).status for p in ("s1", "s2")} == {"down"}  # and reported so
    rig.vpp.vm_connect("/run/vpp/vhus1")  # until Nova reboots the guest
    rig.wait_state("s1")


def test_malformed_values_are_logged_and_skipped(rig, etcd):
    agent = rig.start_agent(report_before_vm_connects=True)
    bad = {
        KEYS.port(rig.host, "junk"): "{not json",
        KEYS.port(rig.host, "v2"): '{"version": 2, "port_id": "v2"}',
        KEYS.port(rig.host, "mismatch"): model.encode(binding("other")),
        KEYS.port(rig.host, "big"): '{"version": 1, "x": "' + "y" * (1024 * 1024) + '"}',
        KEYS.host_ports_prefix(rig.host) + "p/extra": "{}",
    }
    for key, value in bad.items():
        etcd.put(key, value)
    rig.put(binding("good"))
    rig.wait_state("good")
    wait_for(lambda: len(agent.cache.rejected) == len(bad), what="every bad value rejected")
    assert set(agent.cache.rejected) == set(bad)
    assert "schema version 2" in agent.cache.rejected[KEYS.port(rig.host, "v2")]
    assert "does not match the key" in agent.cache.rejected[KEYS.port(rig.host, "mismatch")]
    assert set(agent.inventory.ports) == {"good"}
    # A good value replacing a bad one is taken up.
    rig.put(binding("junk", mac_address="fa:16:3e:00:00:09"))
    rig.wait_state("junk")


def test_dropped_connection_reconnects_and_changes_nothing(rig):
    agent = rig.start_agent(report_before_vm_connects=True)
    rig.put(binding("p1"))
    rig.wait_state("p1")
    assert agent.wait_converged(10)
    before = agent.vpp.mutations
    rig.vpp.drop_connections()  # VPP is fine; only the socket broke
    wait_for(lambda: agent.resyncs >= 2, timeout=10, what="resync after reconnect")
    assert agent.wait_converged(10)
    assert agent.vpp.mutations == before
    assert set(agent.inventory.ports) == {"p1"}


def test_failing_vpp_calls_are_retried_without_holding_up_other_ports(rig):
    agent = rig.start_agent(report_before_vm_connects=True)
    rig.put(binding("p1"))
    rig.wait_state("p1")
    rig.vpp.fail_next(2, retval=-1, message="create_vhost_user_if_v2")
    rig.put(binding("p2", mac_address="fa:16:3e:00:00:02"))
    rig.put(binding("t1", binding_type="tap", network_id="n-t", segmentation_id=101))
    rig.vpp.add_kernel_interface("tapt1")
    rig.wait_state("t1")
    rig.wait_state("p2", timeout=15)
    assert rig.vpp.calls["create_vhost_user_if_v2"] == 4  # p1, then p2 failed twice
    assert agent.queue.failures(("port", "p2")) == 0  # reset after success
    assert agent.wait_converged(10)


class HeldLoad:
    """Holds every agent's port load after its first page, until released.

    The first page's bindings are in the cache by then; the rest of etcd's
    answer is not (the watcher thread waits in the page callback).
    """

    def __init__(self, monkeypatch) -> None:
        self.release = threading.Event()
        self.pages = 0
        real = PortCache.apply_page

        def held(cache, page):
            if self.pages:
                assert self.release.wait(10), "the test never released the load"
            self.pages += 1
            return real(cache, page)

        monkeypatch.setattr(PortCache, "apply_page", held)


def test_ports_are_programmed_and_reported_while_the_load_goes_on(rig, monkeypatch):
    rig.vpp.auto_connect_vms = True
    for i in range(3):
        rig.put(binding(f"p{i}", mac_address=f"fa:16:3e:00:02:{i:02x}"))
    held = HeldLoad(monkeypatch)
    agent = rig.start_agent(load_page_size=1)
    # p0 came with the first page: it is programmed and reported (Nova hears
    # "plugged") while etcd's load of the others has not finished.
    rig.wait_state("p0")
    assert held.pages == 1 and not agent._watcher.wait_loaded(0)
    assert set(agent.inventory.ports) == {"p0"}
    held.release.set()
    assert agent.wait_converged(10)
    assert set(agent.inventory.ports) == {"p0", "p1", "p2"}
    assert all(rig.state(f"p{i}") for i in range(3))


def test_a_restart_removes_nothing_before_the_load_is_complete(rig, monkeypatch):
    rig.vpp.auto_connect_vms = True
    first = rig.start_agent()
    for i in range(3):
        mac = f"fa:16:3e:00:03:{i:02x}"
        rig.put(binding(f"p{i}", mac_address=mac, network_id=f"n{i}", segmentation_id=200 + i))
    wait_for(lambda: all(rig.state(f"p{i}") for i in range(3)), what="3 ports reported")
    assert first.wait_converged(10)
    rig.stop_agents()
    rig.delete("p2")  # unbound while the agent was down
    held = HeldLoad(monkeypatch)
    second = rig.start_agent(load_page_size=1)
    # The resync adopted all three from VPP; p0's binding is in. p1 and p2
    # have none yet, which says nothing yet: they, and the networks and the
    # reports that hang on them, wait for the rest of the load.
    wait_for(lambda: held.pages == 1 and second.resyncs == 1, what="the first page")
    wait_for(lambda: second.queue.idle() and second.ports.passes, what="p0 reconciled")
    assert set(second.inventory.ports) == {"p0", "p1", "p2"}
    assert second.vpp.mutations == 0
    assert rig.state("p1") is not None and rig.state("p2") is not None
    held.release.set()
    assert second.wait_converged(10)
    # Then the load says what is gone: only p2 (its network too) is removed.
    assert set(second.inventory.ports) == {"p0", "p1"}
    assert rig.state("p1") is not None and rig.state("p2") is None
    assert second.vpp.mutations > 0
    tags = rig.tags()
    assert mark(t.NETWORK_TAG + "n2") not in tags and mark(t.PORT_TAG + "p2") not in tags
    assert {mark(t.NETWORK_TAG + "n0"), mark(t.NETWORK_TAG + "n1"), mark(t.PORT_TAG + "p1")} <= tags

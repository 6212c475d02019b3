"""The dev cloud keeps its ports across restarts, and tells a shell how to reach it."""

from __future__ import annotations

import itertools
import socket
import sys
from pathlib import Path

from networking_vpp.cli.etcd_setup import write_identity
from networking_vpp.testing.devcloud import __main__ as devcloud_main
from networking_vpp.testing.devcloud import etcd_auth
from networking_vpp.testing.devcloud.cloud import DevCloud
from networking_vpp.testing.devcloud.layout import Layout, Ports, choose_ports, port_free

HOSTS = ("compute-1", "compute-2")


def picker(start: int = 40000):  # noqa: ANN201
    counter = itertools.count(start)
    return lambda: next(counter)


def test_a_first_start_picks_every_port_once() -> None:
    ports = choose_ports(None, HOSTS, picker(), free=lambda _p: True)
    singles = [ports.mariadb, ports.etcd_client, ports.etcd_peer, ports.neutron, ports.nova]
    singles += [ports.nova_metadata, ports.rabbitmq, ports.rabbitmq_dist, ports.epmd]
    everything = singles + list(ports.hosts.values())
    assert len(set(everything)) == len(everything)
    assert all(everything)
    assert sorted(ports.hosts) == list(HOSTS)


def test_a_restart_keeps_the_ports_it_had(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    first = choose_ports(None, HOSTS, picker(41000), free=lambda _p: True)
    first.neutron_agents = True
    layout.save_ports(first)
    again = choose_ports(layout.load_ports(), HOSTS, picker(42000), free=lambda _p: True)
    for name in ("mariadb", "etcd_client", "neutron", "nova", "rabbitmq", "epmd"):
        assert getattr(again, name) == getattr(first, name)
    assert again.hosts == first.hosts


def test_a_port_taken_meanwhile_is_replaced_alone() -> None:
    first = choose_ports(None, HOSTS, picker(43000), free=lambda _p: True)
    again = choose_ports(first, HOSTS, picker(44000), free=lambda p: p != first.neutron)
    assert again.neutron != first.neutron
    assert again.neutron >= 44000
    assert again.mariadb == first.mariadb
    assert again.hosts == first.hosts


def test_a_new_host_gets_a_port_and_no_port_is_given_twice() -> None:
    first = choose_ports(None, ("compute-1",), picker(45000), free=lambda _p: True)
    # The picker hands out a port the previous start already holds: skipped.
    again = choose_ports(first, HOSTS, picker(first.mariadb), free=lambda _p: True)
    values = [again.mariadb, again.neutron, *again.hosts.values()]
    assert len(set(values)) == len(values)
    assert again.hosts["compute-1"] == first.hosts["compute-1"]


def test_an_external_etcd_gets_no_ports() -> None:
    ports = choose_ports(None, HOSTS, picker(), ["http://127.0.0.1:2379"], free=lambda _p: True)
    assert ports.etcd_client == ports.etcd_peer == 0
    assert ports.etcd_endpoints == ["http://127.0.0.1:2379"]


def test_port_free_sees_a_listener() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not port_free(port)
    assert port_free(port)  # closed again (SO_REUSEADDR, as the servers bind)


def test_old_state_files_load(tmp_path: Path) -> None:
    # A cloud.json from before the agents, and one from a newer version.
    layout = Layout(tmp_path)
    layout.state_file.write_text('{"mariadb": 1, "neutron": 2, "hosts": {"c": 3}, "new": 9}')
    ports = layout.load_ports()
    assert ports == Ports(mariadb=1, neutron=2, hosts={"c": 3})


def test_env_prints_what_a_shell_needs(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    cloud = DevCloud(tmp_path)
    ports = choose_ports(None, HOSTS, picker(46000), free=lambda _p: True)
    cloud.layout.make_dirs()
    cloud.layout.save_ports(ports)
    server = etcd_auth.snippet(cloud.layout, etcd_auth.SERVER)
    server.parent.mkdir()
    write_identity(server, "networking-vpp-server", "pw")

    assert devcloud_main.main(["--base", str(tmp_path), "env"]) == 0
    out = capsys.readouterr().out
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in out.splitlines()
        if line.startswith("export ")
    )
    assert exports["PATH"].startswith(str(Path(sys.executable).parent) + ":")
    assert exports["OS_AUTH_TYPE"] == "none"
    assert exports["OS_ENDPOINT"] == f"http://127.0.0.1:{ports.neutron}"
    assert exports["ETCDCTL_API"] == "3"
    assert exports["ETCDCTL_ENDPOINTS"] == f"http://127.0.0.1:{ports.etcd_client}"
    assert exports["ETCDCTL_USER"] == "networking-vpp-server:pw"  # etcd has auth on
    config = exports["NETWORKING_VPP_CONFIG"].strip("'")
    assert config == (
        f"--config-file {tmp_path / 'etc' / 'neutron.conf'} "
        f"--config-file {tmp_path / 'etc' / 'ml2_conf.ini'}"
    )


def test_env_without_a_cloud_fails(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert devcloud_main.main(["--base", str(tmp_path / "none"), "env"]) == 1
    assert "no dev cloud" in capsys.readouterr().err

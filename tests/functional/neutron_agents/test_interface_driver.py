"""The ``vpp`` interface driver with real namespaces and veth pairs (root only)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyroute2
import pytest
from neutron import privileged
from neutron.agent.common import utils as agent_utils
from neutron.agent.linux import ip_lib
from neutron.conf.agent import common as agent_conf
from oslo_config import cfg
from oslo_privsep import priv_context

from networking_vpp.neutron_agents.interface import VppInterfaceDriver

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="makes namespaces and veth pairs")

MAC = "fa:16:3e:12:34:56"
IFF_UP = 1


@pytest.fixture(autouse=True)
def in_process_privsep() -> Iterator[None]:
    """Run Neutron's privileged calls in this (root) process, without a daemon."""
    contexts = [c for c in vars(privileged).values() if isinstance(c, priv_context.PrivContext)]
    before = [c.client_mode for c in contexts]
    for context in contexts:
        context.set_client_mode(False)
    yield
    for context, mode in zip(contexts, before, strict=True):
        context.set_client_mode(mode)


@pytest.fixture
def port_id() -> Iterator[str]:
    """A fresh port id; whatever root-namespace device it names goes at the end."""
    pid = str(uuid.uuid4())
    yield pid
    try:
        ip_lib.IPDevice("tap" + pid[:11]).link.delete()
    except ip_lib.NetworkInterfaceNotFound:
        pass  # none, or going with its peer's namespace (the kernel's cleanup is async)


@pytest.fixture
def namespace() -> Iterator[str]:
    name = "qdhcp-test-" + uuid.uuid4().hex[:8]
    ip_lib.create_network_namespace(name)
    yield name
    if ip_lib.network_namespace_exists(name):
        ip_lib.delete_network_namespace(name)


@pytest.fixture
def driver() -> VppInterfaceDriver:
    return VppInterfaceDriver(cfg.ConfigOpts())


def device(name: str, namespace: str | None = None) -> dict | None:
    """What the kernel says of a device (None: there is none)."""
    for info in ip_lib.get_devices_info(namespace):
        if info["name"] == name:
            return info
    return None


def admin_up(name: str, namespace: str | None = None) -> bool:
    """Whether the device is administratively up (IFF_UP)."""
    with pyroute2.NetNS(namespace) if namespace else pyroute2.IPRoute() as ipr:
        (link,) = ipr.get_links(ifname=name)
        return bool(link["flags"] & IFF_UP)


def test_entry_point_loads_the_driver():
    conf = cfg.ConfigOpts()
    agent_conf.register_interface_driver_opts_helper(conf)
    conf.set_override("interface_driver", "vpp")
    assert isinstance(agent_utils.load_interface_driver(conf), VppInterfaceDriver)


def test_dhcp_port_plug_makes_both_ends(driver, port_id, namespace):
    name = driver.get_device_name(type("Port", (), {"id": port_id})())
    assert name == "tap" + port_id[:11]  # the DHCP agent's name: the root end's too
    driver.plug("net", port_id, name, MAC, namespace=namespace, mtu=1450)
    root, ns = device(name), device(name, namespace)
    assert root is not None and ns is not None
    assert root["kind"] == ns["kind"] == "veth"
    assert ns["mac"] == MAC
    assert root["mtu"] == ns["mtu"] == 1450
    assert admin_up(name) and admin_up(name, namespace)  # af_packet needs its end up
    assert Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").read_text().strip() == "1"


def test_router_port_plug_names_the_root_end_after_the_port(driver, port_id, namespace):
    name = "qr-" + port_id[:11]
    driver.plug("net", port_id, name, MAC, namespace=namespace, prefix="qr-", mtu=1400)
    assert device(name) is None  # only in the router's namespace
    assert device(name, namespace)["mac"] == MAC
    assert device("tap" + port_id[:11])["mtu"] == 1400
    driver.set_mtu(name, 1300, namespace=namespace, prefix="qr-")
    assert device(name, namespace)["mtu"] == device("tap" + port_id[:11])["mtu"] == 1300
    driver.unplug(name, namespace=namespace, prefix="qr-")
    assert device("tap" + port_id[:11]) is None


def test_plug_twice_only_sets_the_mtu(driver, port_id, namespace):
    name = "tap" + port_id[:11]
    driver.plug("net", port_id, name, MAC, namespace=namespace, mtu=1450)
    index = device(name)["index"]
    driver.plug("net", port_id, name, MAC, namespace=namespace, mtu=1500)
    assert device(name)["index"] == index  # the same pair
    assert device(name)["mtu"] == device(name, namespace)["mtu"] == 1500


def test_plug_replaces_a_leftover_root_device(driver, port_id, namespace):
    name = "tap" + port_id[:11]
    ip_lib.IPWrapper().add_veth(name, "lo" + port_id[:11])  # not the port's pair
    driver.plug("net", port_id, name, MAC, namespace=namespace, mtu=1450)
    assert device(name, namespace) is not None
    assert device("lo" + port_id[:11]) is None  # the leftover pair went


def test_unplug_removes_both_ends_and_twice_is_fine(driver, port_id, namespace):
    name = "tap" + port_id[:11]
    driver.plug("net", port_id, name, MAC, namespace=namespace, mtu=1450)
    driver.unplug(name, namespace=namespace)
    assert device(name) is None and device(name, namespace) is None
    driver.unplug(name, namespace=namespace)
    ip_lib.delete_network_namespace(namespace)
    driver.unplug(name, namespace=namespace)  # the namespace went first: still fine


def test_plug_without_namespace_refuses_a_name_clash(driver, port_id):
    with pytest.raises(ValueError):
        driver.plug_new("net", port_id, "tap" + port_id[:11], MAC, mtu=1500)
    assert device("tap" + port_id[:11]) is None

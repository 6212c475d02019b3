"""Neutron's own ML2 API tests, run with ``vpp`` as the only mechanism driver.

Networks are VLAN (project_network_types) and every host looks alive with every
physnet, so every port that gets a host is bound by the vpp driver. Inherited
tests are overridden only where they assume Neutron's ``test`` driver; each
override says why.
"""

from __future__ import annotations

import os
import unittest

from neutron.tests.unit.plugins.ml2 import test_plugin
from neutron_lib.api.definitions import portbindings
from webob import exc

from tests.unit.server import base

# Ports, Networks, BasicGet and the binding host/vnic mixins run in full. Of the
# 188 subnet tests (IPAM, mostly blind to the mechanism driver) CI runs those that
# involve ports or reach the driver, plus the basic lifecycle; the full set takes
# about 2.5 more minutes on 2 cores. NETWORKING_VPP_FULL_ML2=1 runs all of it.
FULL = os.environ.get("NETWORKING_VPP_FULL_ML2") == "1"
SUBNET_SUBSET = frozenset(
    name
    for name in dir(test_plugin.TestMl2SubnetsV2)
    if name.startswith("test_") and "port" in name
) | {
    "test_create_subnet",
    "test_create_subnet_check_mtu_in_mech_context",
    "test_create_subnets_bulk_native",
    "test_create_subnets_bulk_native_ipv6",
    "test_delete_network",
    "test_delete_subnet",
    "test_delete_subnet_with_other_subnet_on_network_still_in_use",
    "test_list_subnets",
    "test_subnet_after_create_callback",
    "test_subnet_after_delete_callback",
    "test_subnet_after_update_callback",
    "test_subnet_update_ipv4_and_ipv6_pd_slaac_subnets",
    "test_update_subnet",
    "test_update_subnet_gw_ip_in_use_by_router_returns_409",
}


def only(selected: frozenset[str] | set[str]):
    """Class decorator: hide inherited tests not in ``selected`` (unless FULL)."""

    def hide(cls):
        if not FULL:
            for name in dir(cls):
                if name.startswith("test_") and name not in selected:
                    setattr(cls, name, None)  # not callable: unittest and pytest skip it
        return cls

    return hide


class TestVppPortsV2(test_plugin.TestMl2PortsV2, base.VppTestCase):
    def test_update_port_mac(self):
        # Neutron's 'test' driver never binds 'fake_host'; vpp binds it, and ML2
        # refuses MAC changes of bound ports (Ml2Plugin._check_mac_update_allowed).
        self.check_update_port_mac(
            host_arg={portbindings.HOST_ID: "fake_host"},
            arg_list=(portbindings.HOST_ID,),
            expected_status=exc.HTTPConflict.code,
            expected_error="PortBound",
        )

    @unittest.skip(
        "mocks add_provisioning_component module-wide and asserts it is not called on a "
        "host change; vpp adds its own block exactly then (covered in test_mech_driver)"
    )
    def test_dhcp_provisioning_blocks_not_inserted_on_no_addr_change(self):
        pass


class TestVppNetworksV2(test_plugin.TestMl2NetworksV2, base.VppTestCase):
    pass


@only(SUBNET_SUBSET)
class TestVppSubnetsV2(test_plugin.TestMl2SubnetsV2, base.VppTestCase):
    pass


class TestVppBasicGet(test_plugin.TestMl2BasicGet, base.VppTestCase):
    pass


class TestVppPortBindingHost(test_plugin.TestMl2PortBindingHost, base.VppTestCase):
    pass


class TestVppPortBindingVnicType(test_plugin.TestMl2PortBindingVnicType, base.VppTestCase):
    pass

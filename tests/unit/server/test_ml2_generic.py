"""Neutron's own ML2 API tests, run with ``vpp`` as the only mechanism driver.

Networks are VLAN (project_network_types) and every host looks alive with every
physnet, so every port that gets a host is bound by the vpp driver. Inherited
tests are overridden only where they assume Neutron's ``test`` driver; each
override says why.
"""

from __future__ import annotations

import unittest

from neutron.tests.unit.plugins.ml2 import test_plugin
from neutron_lib.api.definitions import portbindings
from webob import exc

from tests.unit.server import base


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


class TestVppSubnetsV2(test_plugin.TestMl2SubnetsV2, base.VppTestCase):
    pass


class TestVppBasicGet(test_plugin.TestMl2BasicGet, base.VppTestCase):
    pass


class TestVppPortBindingHost(test_plugin.TestMl2PortBindingHost, base.VppTestCase):
    pass


class TestVppPortBindingVnicType(test_plugin.TestMl2PortBindingVnicType, base.VppTestCase):
    pass

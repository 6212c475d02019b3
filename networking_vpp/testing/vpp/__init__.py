"""A VPP emulator: VPP's API as vpp_papi presents it, VPP's behaviour, a packet walk.

VPP cannot be installed where the tests run, so the agent's tests run against
this. It is written to be faithful to VPP 26.10 (message and field names,
types, defaults, reply shapes, error codes, index allocation, names, events)
and is checked against VPP's ``.api.json`` files and vpp_papi's serializer by
``tests/unit/testing/test_vpp_fidelity.py``.

    vpp = VppEmulator()
    uplink = vpp.add_hardware_interface("GigabitEthernet0/8/0", "52:54:00:00:08:00")
    client = vpp.client()                    # a vpp_papi.VPPApiClient look-alike
    client.connect("agent")
    reply = client.api.create_vlan_subif(sw_if_index=uplink, vlan_id=100)
    vpp.walk(Frame(src_mac=..., dst_mac=...), ingress="GigabitEthernet0/8/0")
    vpp.passes(frame, ingress=port_a, egress=port_b)   # through ACLs and MACIP

Layout: ``defs/`` declares the messages (VPP ``.api`` syntax), ``apidef``
parses them, ``codec`` checks arguments and builds replies as vpp_papi does,
``handlers/`` implement the messages on ``state``, ``emulator`` dispatches
calls and plays the world (NICs, kernel interfaces, QEMU, restarts),
``client`` is the vpp_papi-shaped connection, ``packet`` the packet walk,
``frameio`` (with ``rawframe``) the walk on real frames of af_packet interfaces
bound to real kernel devices.
The ACL plugin: ``acl_state`` (ACLs, MACIP ACLs, bindings, sessions; part of
``state``) and ``acl_path`` (its L2 features on the walk: first-match ACLs,
permit+reflect sessions, MACIP classifier tables; ``vpp.features.verdicts``
and ``vpp.sessions`` let a test see what they did).
This package never imports vpp_papi and never reads ``../shared``.
"""

from networking_vpp.testing.vpp import errors
from networking_vpp.testing.vpp.acl_path import AclFeatures, Verdict
from networking_vpp.testing.vpp.client import EmulatorClient
from networking_vpp.testing.vpp.convert import MACAddress
from networking_vpp.testing.vpp.emulator import VppEmulator
from networking_vpp.testing.vpp.errors import (
    VPPApiError,
    VPPIOError,
    VPPSerializerValueError,
    VPPValueError,
)
from networking_vpp.testing.vpp.packet import Egress, Frame, L2Features

__all__ = [
    "AclFeatures",
    "Egress",
    "EmulatorClient",
    "Frame",
    "L2Features",
    "MACAddress",
    "VPPApiError",
    "VPPIOError",
    "VPPSerializerValueError",
    "VPPValueError",
    "Verdict",
    "VppEmulator",
    "errors",
]

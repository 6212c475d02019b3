"""A VPP emulator: VPP's API socket, VPP's behaviour, a packet walk.

VPP cannot be installed where the tests run, so the agent's tests run against
this. It is written to be faithful to VPP 26.10 (message and field names,
types, defaults, reply shapes, error codes, index allocation, names, events)
and its generated ``.api.json`` files are checked against VPP's by
``tests/unit/testing/test_vpp_fidelity.py``. The only way to talk to it is
VPP's API socket, with vpp_papi, as to VPP:

    vpp = VppEmulator()
    uplink = vpp.add_hardware_interface("GigabitEthernet0/8/0", "52:54:00:00:08:00")
    server = socket_server.serve(vpp)        # VPP's API socket, for vpp_papi clients
    client = VPPApiClient(apidir=[server.api_dir], server_address=server.path)
    client.connect("agent")                  # (a test: client = server.connect("test"))
    reply = client.api.create_vlan_subif(sw_if_index=uplink, vlan_id=100)
    vpp.walk(Frame(src_mac=..., dst_mac=...), ingress="GigabitEthernet0/8/0")
    vpp.passes(frame, ingress=port_a, egress=port_b)   # through ACLs and MACIP

Layout: ``defs/`` declares the messages (VPP ``.api`` syntax), ``apidef``
parses them, ``apijson`` writes them out as the ``.api.json`` files vpp_papi
loads, ``socket_server`` speaks VPP's API socket protocol (vpp_papi's own
serializer packs and unpacks, and checks the client's arguments),
``handlers/`` implement the messages on ``state``, ``emulator`` dispatches
calls and plays the world (NICs, kernel interfaces, QEMU, restarts),
``packet`` is the packet walk.
The ACL plugin: ``acl_state`` (ACLs, MACIP ACLs, bindings, sessions; part of
``state``) and ``acl_path`` (its L2 features on the walk: first-match ACLs,
permit+reflect sessions, MACIP classifier tables; ``vpp.features.verdicts``
and ``vpp.sessions`` let a test see what they did).
Only ``socket_server`` imports vpp_papi; nothing here reads ``../shared``.
"""

from networking_vpp.testing.vpp import errors
from networking_vpp.testing.vpp.acl_path import AclFeatures, Verdict
from networking_vpp.testing.vpp.convert import MACAddress
from networking_vpp.testing.vpp.emulator import VppEmulator
from networking_vpp.testing.vpp.packet import Egress, Frame, L2Features

__all__ = [
    "AclFeatures",
    "Egress",
    "Frame",
    "L2Features",
    "MACAddress",
    "Verdict",
    "VppEmulator",
    "errors",
]

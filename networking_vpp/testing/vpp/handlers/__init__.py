"""API handlers, one module per area of VPP's API.

Each handler gets the emulator (``Env``), the calling client's index and the
request's fields as vpp_papi's serializer unpacked them (``socket_server.py``:
structs as dicts, enums as ints, MACs as ``convert.MACAddress``); it returns the
reply's fields (a dict; the others are zero, ``retval`` too), or a list of
details dicts for a dump.
Handlers run under the emulator's lock and may be called often: no scans of
all interfaces unless the message is a dump.
"""

from networking_vpp.testing.vpp.handlers import acl, af_packet, interfaces, l2, vhost, vpe
from networking_vpp.testing.vpp.handlers.base import HANDLERS, Env, Handler, handler

__all__ = [
    "HANDLERS",
    "Env",
    "Handler",
    "handler",
    "acl",
    "af_packet",
    "interfaces",
    "l2",
    "vhost",
    "vpe",
]

"""The emulator's declaration table: one module per VPP ``.api`` file.

To implement more of VPP's API, add a module here with
its ``.api`` text (messages and the types they use, copied as facts from the
``.api.json`` of record), list it in ``MODULES``, and register handlers for
its requests in ``networking_vpp.testing.vpp.handlers``. Nothing else changes:
the ``.api.json`` files vpp_papi packs by are generated from what is declared.
"""

from __future__ import annotations

import functools

from networking_vpp.testing.vpp.apidef import ApiRegistry, parse
from networking_vpp.testing.vpp.defs import (
    acl,
    af_packet,
    interface,
    interface_types,
    ip_types,
    l2,
    memclnt,
    vhost_user,
    vlib,
    vpe,
)

MODULES = (
    interface_types,
    ip_types,
    memclnt,
    vpe,
    vlib,
    interface,
    l2,
    vhost_user,
    af_packet,
    acl,
)


@functools.cache
def registry() -> ApiRegistry:
    """Every declared module, parsed once per process."""
    reg = ApiRegistry()
    for mod in MODULES:
        reg.add(parse(mod.API, mod.NAME))
    return reg

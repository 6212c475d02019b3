"""The emulator's ``.api.json`` files, generated from its own declarations.

vpp_papi builds its message classes from ``.api.json`` files and finds each
message in VPP's message table by ``<name>_<crc>``. The emulator declares its
messages in ``.api`` syntax (``defs/``); this module writes them out as
VPP's ``vppapigen`` would: one file per declared module, its messages (with
``_vl_msg_id`` first and the CRC), services, and every type, enum and alias
its messages use (vppapigen copies imported types in the same way), so a
vpp_papi client loading these files talks to the emulator exactly as it talks
to a VPP whose files it loaded. Nothing is copied from VPP's files: the
fidelity test (``tests/unit/testing/test_vpp_fidelity.py``) compares the
generated files with the files of record.

The CRC is vppapigen's: CRC-32 of the text Python prints for the message's
field list (a scalar as ``['u32', 'context']``, an array as
``['string', 'tag', 64, None]``; ``_vl_msg_id`` and options left out), then
folded with the CRC of each user type a field uses, recursively (a struct or
union: its field list; an enum: its ``[name, value]`` list without the values
marked ``backwards_compatible``, not recursed; an alias: ``[]``).
"""

from __future__ import annotations

import binascii
import functools
import json
from pathlib import Path
from typing import Any

from networking_vpp.testing.vpp.apidef import ApiModule, ApiRegistry, FieldDef
from networking_vpp.testing.vpp.defs import registry


def _block_text(fields: tuple[FieldDef, ...]) -> str:
    """What vppapigen's ``str(block)`` prints for a field list."""
    parts = []
    for f in fields:
        if f.name == "_vl_msg_id":
            continue  # added after the CRC is taken
        if f.length is None and f.type != "string":
            parts.append(repr([f.type, f.name]))
        else:
            parts.append(repr([f.type, f.name, f.length or 0, f.length_field]))
    return "[" + ", ".join(parts) + "]"


def _type_text(reg: ApiRegistry, tname: str) -> str | None:
    """The text a user type contributes to a CRC (None: not a user type)."""
    if tname in reg.types:
        return _block_text(reg.types[tname].fields)
    if tname in reg.enums:
        e = reg.enums[tname]
        return repr([list(v) for v in e.values if v[0] not in e.compatible])
    if tname in reg.aliases:
        return "[]"  # vppapigen keeps the empty block of an alias, for compatibility
    return None


def _fold(reg: ApiRegistry, fields: tuple[FieldDef, ...], crc: int) -> int:
    for f in fields:
        if not f.type.startswith("vl_api_"):
            continue
        text = _type_text(reg, f.type)
        if text is None:
            raise KeyError(f"undeclared type {f.type}")
        crc = binascii.crc32(text.encode(), crc)
        if f.type in reg.types:  # enums and aliases end the recursion
            crc = _fold(reg, reg.types[f.type].fields, crc)
    return crc


def message_crc(reg: ApiRegistry, name: str) -> str:
    """vppapigen's CRC of a declared message, as ``0x%08x``."""
    fields = reg.messages[name].fields
    crc = binascii.crc32(_block_text(fields).encode())
    return f"0x{_fold(reg, fields, crc):08x}"


def _ordered_types(reg: ApiRegistry, names: set[str]) -> list[str]:
    """Struct and union types, each after the types it uses (vpp_papi resolves in order)."""
    out: list[str] = []

    def visit(tname: str) -> None:
        if tname in out or tname not in reg.types:
            return
        for f in reg.types[tname].fields:
            visit(f.type)
        out.append(tname)

    for tname in sorted(names):
        visit(tname)
    return out


def _short(tname: str) -> str:
    return tname[len("vl_api_") : -len("_t")]


def _message_json(reg: ApiRegistry, name: str) -> list[Any]:
    fields = [f.as_json() for f in reg.messages[name].fields]
    return [name, *fields, {"crc": message_crc(reg, name)}]


def module_json(reg: ApiRegistry, module: ApiModule) -> dict[str, Any]:
    """One module's ``.api.json`` content."""
    names = list(module.messages)
    used = reg.referenced_types(names) | set(module.types) | set(module.enums)
    used |= set(module.aliases)
    types: list[list[Any]] = []
    unions: list[list[Any]] = []
    for tname in _ordered_types(reg, used):
        sdef = reg.types[tname]
        fields: list[Any] = [f.as_json() for f in sdef.fields]
        (unions if sdef.kind == "union" else types).append([sdef.name, *fields])
    enums: list[list[Any]] = []
    enumflags: list[list[Any]] = []
    for tname in sorted(t for t in used if t in reg.enums):
        e = reg.enums[tname]
        entry: list[Any] = [e.name, *(list(v) for v in e.values), {"enumtype": e.enumtype}]
        (enumflags if e.flag else enums).append(entry)
    aliases = {_short(t): reg.aliases[t].as_json() for t in sorted(used) if t in reg.aliases}
    messages = [
        [
            name,
            *(f.as_json() for f in module.messages[name].fields),
            {"crc": message_crc(reg, name)},
        ]
        for name in names
    ]
    return {
        "module": module.name,
        "types": types,
        "messages": messages,
        "unions": unions,
        "enums": enums,
        "enumflags": enumflags,
        "services": {name: svc.as_json() for name, svc in module.services.items()},
        "options": {},
        "aliases": aliases,
        "vl_api_version": "0x00000000",
        "imports": [],
        "counters": [],
        "paths": [],
    }


@functools.cache
def _api_texts() -> tuple[tuple[str, str], ...]:
    """Every declared module's file name and ``.api.json`` text (made once a process)."""
    reg = registry()
    return tuple(
        (f"{m.name}.api.json", json.dumps(module_json(reg, m), indent=1)) for m in reg.modules
    )


def write_api_files(directory: str | Path) -> list[Path]:
    """Write every declared module's ``<module>.api.json`` into ``directory``."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in _api_texts():
        target = path / name
        target.write_text(text)
        written.append(target)
    return written

"""The emulator's own declaration of VPP's API, in VPP's ``.api`` syntax.

Each module under ``defs/`` holds the messages and types the emulator
implements, written the way VPP's ``.api`` sources write them (``define``,
``autoreply define``, ``typedef``, ``enum``/``enumflag``, ``union``,
``service { rpc ... }``). This module parses that text into plain records
whose shape is the shape of VPP's generated ``.api.json`` (field lists with
type, name, array length, length field and options; services with reply,
stream, stream_msg and events), so a test can compare them one to one with
the ``.api.json`` files of record. The emulator never reads those files: its
users' clones do not have them.

The same derivation rules as VPP's ``vppapigen`` apply: every ``define`` gets
a leading ``u16 _vl_msg_id``; ``autoreply`` adds ``<name>_reply`` with
``context`` and ``retval``; ``<x>_dump`` with ``<x>_details`` is an old-style
stream; any other ``<name>`` with ``<name>_reply`` is a plain request.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<comment>/\*.*?\*/|//[^\n]*)|(?P<str>\"[^\"]*\")|"
    r"(?P<num>-?0x[0-9a-fA-F]+|-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[{}\[\];:=,]))",
    re.S,
)


@dataclasses.dataclass(frozen=True)
class FieldDef:
    """One field: ``type name[length]`` or ``type name[length_field]`` plus options."""

    type: str
    name: str
    length: int | None = None  # None: scalar; 0: variable; n: fixed
    length_field: str | None = None  # variable-length array sized by this field
    options: tuple[tuple[str, Any], ...] = ()

    def option(self, key: str, default: Any = None) -> Any:
        """The value of option ``key`` (``default``, ``limit``...)."""
        return dict(self.options).get(key, default)

    def as_json(self) -> list[Any]:
        """The field as VPP's ``.api.json`` writes it."""
        out: list[Any] = [self.type, self.name]
        if self.length is not None:
            out.append(self.length)
        if self.length_field is not None:
            out.append(self.length_field)
        if self.options:
            out.append(dict(self.options))
        return out


@dataclasses.dataclass(frozen=True)
class StructDef:
    """A ``define`` (message), ``typedef`` struct or ``union``."""

    name: str
    fields: tuple[FieldDef, ...]
    kind: str  # "message" | "type" | "union"


@dataclasses.dataclass(frozen=True)
class EnumDef:
    """An ``enum`` or ``enumflag`` with its underlying integer type."""

    name: str
    values: tuple[tuple[str, int], ...]
    enumtype: str = "u32"
    flag: bool = False
    #: values marked ``[backwards_compatible]``: in the enum, not in its CRC
    compatible: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class AliasDef:
    """``typedef u32 interface_index;`` or ``typedef u8 mac_address[6];``."""

    name: str
    type: str
    length: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The alias as VPP's ``.api.json`` writes it."""
        out: dict[str, Any] = {"type": self.type}
        if self.length is not None:
            out["length"] = self.length
        return out


@dataclasses.dataclass(frozen=True)
class Service:
    """How a request is answered: its reply, and whether it streams."""

    request: str
    reply: str
    stream: bool = False
    stream_msg: str | None = None
    events: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The service as VPP's ``.api.json`` writes it."""
        out: dict[str, Any] = {"reply": self.reply}
        if self.stream:
            out["stream"] = True
        if self.stream_msg:
            out["stream_msg"] = self.stream_msg
        if self.events:
            out["events"] = list(self.events)
        return out


@dataclasses.dataclass
class ApiModule:
    """Everything one ``.api`` text declares."""

    name: str
    messages: dict[str, StructDef] = dataclasses.field(default_factory=dict)
    types: dict[str, StructDef] = dataclasses.field(default_factory=dict)  # by vl_api_x_t
    enums: dict[str, EnumDef] = dataclasses.field(default_factory=dict)
    aliases: dict[str, AliasDef] = dataclasses.field(default_factory=dict)
    services: dict[str, Service] = dataclasses.field(default_factory=dict)


class ApiSyntaxError(ValueError):
    """The declaration text is not valid ``.api`` syntax."""


def type_name(name: str) -> str:
    """``interface_index`` -> ``vl_api_interface_index_t`` (how fields refer to it)."""
    return f"vl_api_{name}_t"


def _tokens(text: str) -> Iterator[str]:
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ApiSyntaxError(f"cannot parse at {text[pos : pos + 40]!r}")
        pos = m.end()
        if m.lastgroup and m.lastgroup != "comment":
            yield m.group(m.lastgroup)


def _value(tok: str) -> Any:
    """An option value as vppapigen writes it into JSON (``true`` stays a string)."""
    if tok.startswith('"'):
        return tok[1:-1]
    if re.fullmatch(r"-?0x[0-9a-fA-F]+", tok):
        return int(tok, 16)
    if re.fullmatch(r"-?\d+", tok):
        return int(tok)
    if re.fullmatch(r"-?\d+\.\d+", tok):
        return float(tok)
    return tok


class _Parser:
    def __init__(self, text: str, module: str) -> None:
        self.toks = list(_tokens(text))
        self.i = 0
        self.mod = ApiModule(module)
        self.explicit: dict[str, Service] = {}
        self.autoreply: list[str] = []

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> str:
        if self.i >= len(self.toks):
            raise ApiSyntaxError("unexpected end of declaration")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, tok: str) -> None:
        got = self.next()
        if got != tok:
            raise ApiSyntaxError(f"expected {tok!r}, got {got!r} near token {self.i}")

    def skip_semicolon(self) -> None:
        if self.peek() == ";":
            self.i += 1

    def parse(self) -> ApiModule:
        while self.peek() is not None:
            tok = self.next()
            if tok in ("option", "import"):
                while self.next() != ";":
                    pass
            elif tok == "typedef":
                self.typedef()
            elif tok == "union":
                name = self.next()
                self.mod.types[type_name(name)] = StructDef(name, self.block(), "union")
            elif tok in ("enum", "enumflag"):
                self.enum(tok == "enumflag")
            elif tok == "service":
                self.service()
            else:
                self.define(tok)
        self.derive_services()
        return self.mod

    def define(self, tok: str) -> None:
        flags = []
        while tok != "define":
            if tok not in ("autoreply", "autoendian", "manual_print", "manual_endian"):
                raise ApiSyntaxError(f"unexpected {tok!r}")
            flags.append(tok)
            tok = self.next()
        name = self.next()
        fields = (FieldDef("u16", "_vl_msg_id"), *self.block())
        self.mod.messages[name] = StructDef(name, fields, "message")
        if "autoreply" in flags:
            reply = name + "_reply"
            self.mod.messages[reply] = StructDef(
                reply,
                (
                    FieldDef("u16", "_vl_msg_id"),
                    FieldDef("u32", "context"),
                    FieldDef("i32", "retval"),
                ),
                "message",
            )

    def typedef(self) -> None:
        name = self.next()
        if self.peek() == "{":
            self.mod.types[type_name(name)] = StructDef(name, self.block(), "type")
            return
        alias = self.next()
        length = None
        if self.peek() == "[":
            self.next()
            length = int(_value(self.next()))
            self.expect("]")
        self.expect(";")
        self.mod.aliases[type_name(alias)] = AliasDef(alias, name, length)

    def enum(self, flag: bool) -> None:
        name = self.next()
        enumtype = "u32"
        if self.peek() == ":":
            self.next()
            enumtype = self.next()
        self.expect("{")
        values, compatible = [], []
        while self.peek() != "}":
            key = self.next()
            self.expect("=")
            values.append((key, int(_value(self.next()))))
            if self.peek() == "[":  # AF_PACKET_API_FLAG_VERSION_2 = 8 [backwards_compatible]
                self.next()
                while self.next() != "]":
                    compatible.append(key)
            if self.peek() == ",":
                self.next()
        self.expect("}")
        self.skip_semicolon()
        self.mod.enums[type_name(name)] = EnumDef(
            name, tuple(values), enumtype, flag, tuple(dict.fromkeys(compatible))
        )

    def block(self) -> tuple[FieldDef, ...]:
        self.expect("{")
        fields = []
        while self.peek() != "}":
            if self.peek() == "option":
                while self.next() != ";":
                    pass
                continue
            fields.append(self.field())
        self.expect("}")
        self.skip_semicolon()
        return tuple(fields)

    def field(self) -> FieldDef:
        ftype, name = self.next(), self.next()
        length: int | None = None
        length_field: str | None = None
        options: list[tuple[str, Any]] = []
        while self.peek() == "[":
            self.next()
            inner = []
            while self.peek() != "]":
                inner.append(self.next())
            self.next()
            if "=" in inner:  # [default=0xffffffff, limit=64]
                for j in range(0, len(inner), 4):
                    options.append((inner[j], _value(inner[j + 2])))
            elif not inner:
                length = 0
            elif re.fullmatch(r"\d+", inner[0]):
                length = int(inner[0])
            else:
                length, length_field = 0, inner[0]
        self.expect(";")
        return FieldDef(ftype, name, length, length_field, tuple(options))

    def service(self) -> None:
        self.expect("{")
        while self.peek() != "}":
            self.expect("rpc")
            req = self.next()
            self.expect("returns")
            reply = self.next()
            stream, stream_msg, events = False, None, []
            while self.peek() != ";":
                word = self.next()
                if word == "stream":
                    stream = True
                    if self.peek() not in (";", "events"):
                        stream_msg = self.next()
                elif word == "events":
                    while self.peek() not in (";",):
                        tok = self.next()
                        if tok != ",":
                            events.append(tok)
            self.expect(";")
            self.explicit[req] = Service(req, reply, stream, stream_msg, tuple(events))
        self.expect("}")
        self.skip_semicolon()

    def derive_services(self) -> None:
        msgs = self.mod.messages
        for name in msgs:
            if name in self.explicit:
                self.mod.services[name] = self.explicit[name]
            elif name.endswith("_dump") and name[:-5] + "_details" in msgs:
                self.mod.services[name] = Service(name, name[:-5] + "_details", stream=True)
            elif name + "_reply" in msgs:
                self.mod.services[name] = Service(name, name + "_reply")


def parse(text: str, module: str) -> ApiModule:
    """Parse one ``.api`` text into an :class:`ApiModule`."""
    return _Parser(text, module).parse()


@dataclasses.dataclass
class ApiRegistry:
    """Every declared module merged: types are global, as in vpp_papi."""

    modules: list[ApiModule] = dataclasses.field(default_factory=list)
    messages: dict[str, StructDef] = dataclasses.field(default_factory=dict)
    types: dict[str, StructDef] = dataclasses.field(default_factory=dict)
    enums: dict[str, EnumDef] = dataclasses.field(default_factory=dict)
    aliases: dict[str, AliasDef] = dataclasses.field(default_factory=dict)
    services: dict[str, Service] = dataclasses.field(default_factory=dict)
    module_of: dict[str, str] = dataclasses.field(default_factory=dict)

    def add(self, module: ApiModule) -> None:
        """Merge a module; a name declared twice must be declared identically."""
        self.modules.append(module)
        for table, new in (
            (self.messages, module.messages),
            (self.types, module.types),
            (self.enums, module.enums),
            (self.aliases, module.aliases),
            (self.services, module.services),
        ):
            for key, value in new.items():
                if key in table and table[key] != value:  # type: ignore[comparison-overlap]
                    raise ApiSyntaxError(f"{key} declared twice, differently")
                table[key] = value  # type: ignore[assignment]
        for name in module.messages:
            self.module_of[name] = module.name

    def referenced_types(self, names: Iterable[str]) -> set[str]:
        """Every non-base type the given messages use, transitively."""
        seen: set[str] = set()
        todo = [f.type for n in names for f in self.messages[n].fields]
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            if t in self.types:
                seen.add(t)
                todo.extend(f.type for f in self.types[t].fields)
            elif t in self.aliases:
                seen.add(t)
                todo.append(self.aliases[t].type)
            elif t in self.enums:
                seen.add(t)
        return seen

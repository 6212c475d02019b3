"""Compile declared messages into argument checkers and reply builders.

Arguments are checked the way vpp_papi's serializer packs them, so a call the
emulator accepts is a call a real VPP client would send: unknown names are a
``VPPValueError`` (vpp_papi's ``validate_args``); a wrong type, an integer
out of range, a string longer than its array minus the NUL, a fixed array of
the wrong length, a variable array that disagrees with its count field are a
``VPPSerializerValueError``; a missing or ``None`` field takes the declared
default, else zero, except a fixed array of non-``u8`` elements, which the
serializer cannot zero-fill and so rejects. One deliberate difference: an
unknown key inside a nested struct is an error here (the serializer silently
ignores it, which hides typos in ACL rules and the like).

Each message compiles once into a :class:`MessageCodec`: a dict of per-field
check functions, precomputed defaults, and the reply ``namedtuple`` class
(named after the message, ``rename=True``, exactly as vpp_papi builds it).

This runs on every API call, so the common cases skip calls: an integer or a
boolean of the exact type and in range is its own check (``Kind.fast``,
tested inline), a MAC or prefix given as text in a struct goes to its cached
parser (``Kind.text``), and replies are built by dict copies and an
``itemgetter``. Whatever the quick test does not accept goes through the full
check, which decides, and words the error, as before.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import operator
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from networking_vpp.testing.vpp.apidef import ApiRegistry, FieldDef, StructDef
from networking_vpp.testing.vpp.convert import SPECIAL, TEXT
from networking_vpp.testing.vpp.errors import VPPSerializerValueError, VPPValueError

_RANGES = {
    "u8": (0, 0xFF),
    "i8": (-0x80, 0x7F),
    "u16": (0, 0xFFFF),
    "i16": (-0x8000, 0x7FFF),
    "u32": (0, 0xFFFFFFFF),
    "i32": (-0x80000000, 0x7FFFFFFF),
    "u64": (0, 0xFFFFFFFFFFFFFFFF),
    "i64": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
}
REQUIRED: Any = object()  # a field the serializer cannot zero-fill

Check = Callable[[Any, Mapping[str, Any]], Any]  # (value, enclosing args) -> normalised
Out = Callable[[Any], Any]  # handler value -> reply value
Fast = tuple[type, range]  # a value of exactly this type, in this range, is its own check


@dataclasses.dataclass(frozen=True)
class Kind:
    """A compiled type: how to check an argument and how to emit a reply value."""

    check: Check
    default: Any  # normalised value of a missing field, or REQUIRED
    out: Out | None = None  # None: the handler's value is the reply value
    out_default: Any = None  # reply value of a field the handler left out
    # Integers and booleans: what ``check`` returns unchanged, tested inline by
    # the callers (a call per field would cost more than the test).
    fast: Fast | None = None
    # MACs and prefixes: ``check`` of a str value, cached (no Python call on a hit)
    text: Callable[[str], Any] | None = None


class _Never:
    """The type of no value (the fast test of a kind that has none)."""


_NO_FAST: Fast = (_Never, range(0))


def _bad(label: str, value: Any, why: str) -> VPPSerializerValueError:
    return VPPSerializerValueError(f"{label}: cannot pack {value!r}: {why}")


def _int_kind(tname: str, label: str, out: Out | None = None, out_default: Any = 0) -> Kind:
    lo, hi = _RANGES[tname]

    def check(value: Any, _: Mapping[str, Any]) -> int:
        try:
            i = operator.index(value)
        except TypeError:
            raise _bad(label, value, f"{tname} wants an integer") from None
        if i < lo or i > hi:
            raise _bad(label, value, f"out of range for {tname}")
        return i

    return Kind(check, 0, out, out_default, (int, range(lo, hi + 1)))


def _bool_check(value: Any, _: Mapping[str, Any]) -> bool:
    return bool(value)  # struct's "?" packs any object by its truth


def _f64_kind(label: str) -> Kind:
    def check(value: Any, _: Mapping[str, Any]) -> float:
        if not isinstance(value, (int, float)):
            raise _bad(label, value, "f64 wants a number")
        return float(value)

    return Kind(check, 0.0, None, 0.0)


def _string_kind(f: FieldDef, label: str) -> Kind:
    limit = f.option("limit") or f.length or 0
    longest = limit - 1 if limit else sys.maxsize

    def check(value: Any, _: Mapping[str, Any]) -> str:
        if type(value) is str and len(value) <= longest and value.isascii():
            return value  # the usual text, in one test
        if not value:
            return ""
        if not isinstance(value, str):
            raise _bad(label, value, "a string is expected")
        if limit and len(value) > limit - 1:
            raise _bad(label, value, f"longer than {limit - 1} characters")
        if not value.isascii():
            raise _bad(label, value, "not ASCII")
        return value

    return Kind(check, "", None, "")


def _bytes_kind(size: int, label: str) -> Kind:
    def check(value: Any, _: Mapping[str, Any]) -> bytes:
        if not value:
            return b"\0" * size
        if not isinstance(value, (bytes, bytearray)) or len(value) > size:
            raise _bad(label, value, f"wants at most {size} bytes")
        return bytes(value).ljust(size, b"\0")

    return Kind(check, b"\0" * size, None, b"\0" * size)


def _fixed_list_kind(elem: Kind, size: int, label: str) -> Kind:
    elem_check = elem.check
    fast_type, fast_range = elem.fast or _NO_FAST  # integers checked inline, as in decode

    def check(value: Any, _: Mapping[str, Any]) -> list[Any]:
        try:
            n = len(value)
        except TypeError:
            raise _bad(label, value, f"wants a list of {size}") from None
        if n != size:
            raise _bad(label, value, f"wants exactly {size} elements")
        return [v if type(v) is fast_type and v in fast_range else elem_check(v, _) for v in value]

    out = None if elem.out is None else (lambda v, o=elem.out: [o(x) for x in v])
    return Kind(check, REQUIRED, out, [elem.out_default] * size)


def _vla_kind(elem: Kind, length_field: str | None, label: str, is_u8: bool) -> Kind:
    elem_check = elem.check
    fast_type, fast_range = elem.fast or _NO_FAST  # integers checked inline, as in decode

    def check(value: Any, enclosing: Mapping[str, Any]) -> Any:
        if not value:
            return b"" if is_u8 else []
        if length_field is not None:
            if length_field not in enclosing:
                raise _bad(label, value, f"the count field {length_field} is missing")
            if len(value) != enclosing[length_field]:
                raise _bad(label, value, f"{length_field} is {enclosing[length_field]}")
        if is_u8:
            if not isinstance(value, (bytes, bytearray)):
                raise _bad(label, value, "wants bytes")
            return bytes(value)
        return [
            v if type(v) is fast_type and v in fast_range else elem_check(v, enclosing)
            for v in value
        ]

    out = None if elem.out is None or is_u8 else (lambda v, o=elem.out: [o(x) for x in v])
    return Kind(check, b"" if is_u8 else [], out, b"" if is_u8 else [])


def _tuple_getter(keys: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """mapping -> the values of ``keys`` as a tuple (in C for two keys or more)."""
    if len(keys) > 1:
        return operator.itemgetter(*keys)
    # itemgetter of one key returns the value itself, and of none is an error
    if keys:
        key = keys[0]
        return lambda m: (m[key],)
    return lambda m: ()


class _Filler:
    """Reply values in field order: converted where given, zero where left out.

    The zeros are laid under the handler's values in one dict copy, and an
    ``itemgetter`` reads the fields out in order (both in C: twice as fast as
    a ``values.get`` per field). The fields that need it (enums, structs) are
    converted in the dict, given or not: a zero is a reply value already, and
    converting a reply value gives it back (an equal list, for an array).
    """

    __slots__ = ("zeros", "row", "convs")

    def __init__(self, outs: list[tuple[str, Out | None, Any]]) -> None:
        self.zeros = {n: d for n, _, d in outs}
        self.row = _tuple_getter([n for n, _, _ in outs])
        self.convs = tuple((n, o) for n, o, _ in outs if o is not None)

    def __call__(
        self, values: Mapping[str, Any], fixed: Mapping[str, Any] | None = None
    ) -> Sequence[Any]:
        merged = self.zeros.copy()
        merged.update(values)
        if fixed:
            merged.update(fixed)  # (a reply's message id and context)
        for n, o in self.convs:
            merged[n] = o(merged[n])
        return self.row(merged)


class _EnumCache(dict[int, enum.IntFlag]):
    """int -> the enum's IntFlag value, made once (constructing one is slow)."""

    def __init__(self, cls: type[enum.IntFlag]) -> None:
        super().__init__()
        self.cls = cls

    def __missing__(self, value: int) -> enum.IntFlag:
        return self.setdefault(value, self.cls(value))


def _enum_out(cls: type[enum.IntFlag]) -> Out:
    return _EnumCache(cls).__getitem__  # a hit never leaves C


def _special_kind(tname: str) -> Kind:
    conv, zero = SPECIAL[tname]  # a converter is a check (it takes the enclosing args too)
    return Kind(conv, zero, None, zero, text=TEXT.get(tname))


class Compiler:
    """Compiles types and messages of one registry; caches what it compiles."""

    def __init__(self, registry: ApiRegistry) -> None:
        self.reg = registry
        self._kinds: dict[str, Kind] = {}
        self.enum_classes: dict[str, type[enum.IntFlag]] = {}

    def type_kind(self, tname: str) -> Kind:
        """The kind of a named type used as a scalar field."""
        if tname in self._kinds:
            return self._kinds[tname]
        reg = self.reg
        kind: Kind
        if tname in _RANGES:
            kind = _int_kind(tname, tname)
        elif tname == "bool":
            kind = Kind(_bool_check, False, None, False, (bool, range(2)))
        elif tname == "f64":
            kind = _f64_kind(tname)
        elif tname in SPECIAL:
            kind = _special_kind(tname)
        elif tname in reg.enums:
            e = reg.enums[tname]
            cls = enum.IntFlag(tname, dict(e.values))  # type: ignore[misc]
            self.enum_classes[tname] = cls
            kind = _int_kind(e.enumtype, tname, _enum_out(cls), cls(0))
        elif tname in reg.aliases:
            a = reg.aliases[tname]
            kind = self.field_kind(FieldDef(a.type, tname, a.length), tname)
        elif tname in reg.types:
            kind = self._struct_kind(reg.types[tname], tname)
        else:
            raise KeyError(f"undeclared type {tname}")
        self._kinds[tname] = kind
        return kind

    def field_kind(self, f: FieldDef, label: str) -> Kind:
        """The kind of one field, arrays included, with its declared default."""
        kind = self._field_kind(f, label)
        declared = f.option("default")
        if declared is None:
            return kind
        # The serializer packs the declared default as given ("true" packs as True).
        return dataclasses.replace(kind, default=kind.check(declared, {}))

    def _field_kind(self, f: FieldDef, label: str) -> Kind:
        if f.type == "string":
            return _string_kind(f, label)
        if f.length is None:
            return self.type_kind(f.type)
        if f.length == 0:
            return _vla_kind(self.type_kind(f.type), f.length_field, label, f.type == "u8")
        if f.type == "u8":
            return _bytes_kind(f.length, label)
        return _fixed_list_kind(self.type_kind(f.type), f.length, label)

    def _struct_kind(self, sdef: StructDef, tname: str) -> Kind:
        fields = [(f.name, self.field_kind(f, f"{tname}.{f.name}")) for f in sdef.fields]
        names = frozenset(n for n, _ in fields)
        required = [n for n, k in fields if k.default is REQUIRED]
        defaults = {n: k.default for n, k in fields if k.default is not REQUIRED}
        # (name, check, fast type, fast range, text, required), in declaration order
        checks = tuple(
            (n, k.check, *(k.fast or _NO_FAST), k.text, k.default is REQUIRED) for n, k in fields
        )
        cls = collections.namedtuple(tname, [n for n, _ in fields], rename=True)  # type: ignore[misc]
        is_union = sdef.kind == "union"

        def check(value: Any, _: Mapping[str, Any]) -> dict[str, Any]:
            # type() first: the ABC's isinstance is slow, and a plain dict is the norm
            if type(value) is not dict and not isinstance(value, Mapping):
                raise _bad(tname, value, "a dict is expected")
            if not names.issuperset(value):
                raise _bad(tname, value, f"unknown fields {sorted(value.keys() - names)}")
            if is_union:  # the serializer packs the first member given
                for n, k in fields:
                    if n in value:
                        return {n: k.check(value[n], value)}
                return {}
            args = defaults.copy()
            for n, field_check, fast_type, fast_range, text, is_required in checks:
                v = value.get(n)
                if type(v) is fast_type and v in fast_range:
                    args[n] = v
                elif text is not None and type(v) is str:  # (the rules of ACLs and MACIP)
                    try:
                        args[n] = text(v)
                    except (ValueError, TypeError):
                        args[n] = field_check(v, value)  # raises the error, worded
                elif v is not None:
                    args[n] = field_check(v, value)
                elif is_required:
                    raise _bad(tname, value, f"{n} is required")
            return args

        outs = [(n, k.out, k.out_default) for n, k in fields]
        fill = _Filler(outs)

        def out(value: Any) -> Any:
            return value if isinstance(value, cls) else cls._make(fill(value))

        default = REQUIRED if required and not is_union else ({} if is_union else dict(defaults))
        return Kind(check, default, out, cls._make([d for _, _, d in outs]))

    def message(self, name: str, msg_id: int) -> MessageCodec:
        """Compile one declared message."""
        sdef = self.reg.messages[name]
        fields = [(f.name, self.field_kind(f, f"{name}.{f.name}")) for f in sdef.fields]
        return MessageCodec(name, msg_id, fields)


class MessageCodec:
    """One message: check a request's kwargs, build a reply or event tuple."""

    __slots__ = (
        "name",
        "msg_id",
        "fields",
        "allowed",
        "checks",
        "defaults",
        "required",
        "tuple_cls",
        "_fill",
        "_new",
    )

    def __init__(self, name: str, msg_id: int, fields: list[tuple[str, Kind]]) -> None:
        self.name = name
        self.msg_id = msg_id
        self.fields = tuple(n for n, _ in fields)
        self.allowed = frozenset(self.fields)
        #: name -> (check, fast type, fast range): see ``Kind.fast``
        self.checks = {n: (k.check, *(k.fast or _NO_FAST)) for n, k in fields}
        self.defaults = {n: k.default for n, k in fields if k.default is not REQUIRED}
        self.required = tuple(n for n, k in fields if k.default is REQUIRED)
        self.tuple_cls: Any = collections.namedtuple(name, self.fields, rename=True)  # type: ignore[misc]
        self._fill = _Filler([(n, k.out, k.out_default) for n, k in fields])
        self._new = functools.partial(tuple.__new__, self.tuple_cls)

    def decode(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``kwargs`` as vpp_papi would, and return every field normalised."""
        if not self.allowed.issuperset(kwargs):
            unknown = kwargs.keys() - self.allowed
            raise VPPValueError(f"Invalid argument {sorted(unknown)} to {self.name}")
        args = self.defaults.copy()
        checks = self.checks
        for key, value in kwargs.items():  # in the caller's order, as the serializer
            check, fast_type, fast_range = checks[key]
            if type(value) is fast_type and value in fast_range:
                args[key] = value
            elif value is not None:
                args[key] = check(value, kwargs)
        if self.required:
            for key in self.required:
                if kwargs.get(key) is None:
                    raise VPPSerializerValueError(f"{self.name}.{key}: a value is required")
        return args

    def build(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The reply namedtuple; fields the handler left out are zero."""
        return self._new(self._fill(values))

    def reply(self, values: Mapping[str, Any], context: int) -> tuple[Any, ...]:
        """The answer to a request: ``build`` with this message's id and ``context``."""
        return self._new(self._fill(values, {"_vl_msg_id": self.msg_id, "context": context}))

"""Which schema a key's value follows, and its value as plain JSON data for printing."""

from __future__ import annotations

import json
from typing import Any

from networking_vpp.common import keys, model

_STATE_SCHEMAS: dict[str, type] = {
    "alive": model.HostAlive,
    "summary": model.HostSummary,
    "physnets": model.HostPhysnet,
    "ports": model.PortState,
}
_GLOBAL_SCHEMAS: dict[str, type] = {
    "secgroups": model.SecurityGroup,
    "remote_groups": model.RemoteGroupMember,
}


def schema_for(keyspace: keys.KeySpace, key: str) -> type | None:
    """The schema of ``key``'s value, or None for keys without one (or not ours)."""
    try:
        keyspace.parse_port(key)
        return model.PortBinding
    except keys.BadKey:
        pass
    try:
        return _STATE_SCHEMAS[keyspace.parse_state(key).kind]
    except keys.BadKey:
        pass
    try:
        return _GLOBAL_SCHEMAS[keyspace.parse_global(key)[0]]
    except keys.BadKey:
        return None


def decode_value(keyspace: keys.KeySpace, key: str, raw: bytes | None) -> dict[str, Any]:
    """``{"value": ...}`` checked against the key's schema, else raw text (and why)."""
    if raw is None:
        return {}
    schema = schema_for(keyspace, key)
    if schema is not None:
        try:
            model.decode(schema, key, raw)
        except model.BadValue as exc:
            return {"raw": raw.decode(errors="replace"), "invalid": exc.reason}
        return {"value": json.loads(raw)}
    try:
        return {"value": json.loads(raw)}
    except ValueError:
        return {"raw": raw.decode(errors="replace")}

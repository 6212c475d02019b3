"""The agent's desired-state cache, fed by the etcd watcher.

The cache turns etcd's view (keys and raw bytes) into validated schema objects
and tells the caller which work-queue keys changed. A value that fails
validation is logged with its key and reason, counted, and never removes what
the agent programmed: the cache keeps the key's last good value. Deleting a
key is the one way to unbind a port; a value that cannot be read says nothing
about what is wanted (a newer server's schema, a corrupt write, a forged one),
and tearing the port down for it would cut off a working VM. The port is
reported in error with the reason (:meth:`PortCache.rejection`) until a good
value or a delete comes; the agent keeps serving every other key.

A port binding is also checked against the agent's own configuration
(``common/portnames.py``): its vhost-user socket must be the port's name in
the agent's socket directory and its tap device the port's derived name,
since VPP acts on both as root.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Iterable

from networking_vpp.common import keys as k
from networking_vpp.common import model, portnames
from networking_vpp.common.etcd.codec import KV
from networking_vpp.common.etcd.watcher import Event

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Rejection:
    """Why a port's current value was refused, and the binding a report names.

    ``binding_id`` is the refused value's own, when it has one (a newer
    server's binding waits for a report on it), else the last good value's
    (else empty).
    """

    reason: str
    binding_id: str


class PortCache:
    """Desired port bindings of one host, by port id.

    ``socket_dir`` is the agent's vhost-user socket directory (None: none is
    configured, so every vhost-user binding is refused).
    """

    def __init__(self, keyspace: k.KeySpace, host: str, socket_dir: str | None = None) -> None:
        self._keys = keyspace
        self._host = host
        self._socket_dir = socket_dir
        self._ports: dict[str, model.PortBinding] = {}  # the last good value of each port
        self._raw: dict[str, bytes] = {}  # the current value of each port, good or bad
        self._rejections: dict[str, Rejection] = {}  # ports whose current value is bad
        self._by_group: dict[str, set[str]] = {}  # sg id -> ports in it
        # key -> raw: what the pages of the full load under way applied, which
        # replace() then need not look at again
        self._paged: dict[str, bytes] = {}
        self._lock = threading.Lock()
        #: bad values seen, by key (the latest reason), for operators and tests
        self.rejected: dict[str, str] = {}
        self.rejected_total = 0

    def get(self, port_id: str) -> model.PortBinding | None:
        """The desired binding of a port (its last good one), if any."""
        return self._ports.get(port_id)

    def rejection(self, port_id: str) -> Rejection | None:
        """Why the port's current value was refused, or None if it was not."""
        return self._rejections.get(port_id)

    def rejected_ports(self) -> set[str]:
        """Every port whose current value was refused (with or without a good one)."""
        with self._lock:
            return set(self._rejections)

    def group_in_use(self, sg_id: str) -> bool:
        """Whether a port of this host is (desired to be) in the group."""
        return bool(self._by_group.get(sg_id))

    def groups_in_use(self) -> set[str]:
        """Every group a port of this host is in."""
        with self._lock:
            return {sg for sg, ports in self._by_group.items() if ports}

    def port_ids(self) -> set[str]:
        """Every port this host should have."""
        with self._lock:
            return set(self._ports)

    def apply_page(self, page: list[KV]) -> set[str]:
        """Apply one page of a full load as it arrives; returns the port ids that changed.

        A page's values are as current as the load's revision, so they can be
        worked on at once (while etcd sends the next page). Only what is *not*
        in the load has to wait for :meth:`replace`, which completes the load.
        """
        changed: set[str] = set()
        with self._lock:
            for kv in page:
                port_id, differs = self._update(kv.key, kv.value)
                self._paged[kv.key] = kv.value
                if port_id is not None and differs:
                    changed.add(port_id)
        return changed

    def replace(self, snapshot: dict[str, bytes]) -> set[str]:
        """Replace everything with a full load; returns the port ids that changed
        (and that :meth:`apply_page` did not already return)."""
        try:
            return self._replace(snapshot)
        finally:
            self._paged.clear()

    def _replace(self, snapshot: dict[str, bytes]) -> set[str]:
        with self._lock:
            seen: set[str] = set()
            changed: set[str] = set()
            paged = self._paged
            for key, raw in snapshot.items():
                if paged.get(key) == raw:  # applied with its page (or rejected there)
                    port_id = self._port_id(key, quiet=True)
                    if port_id is not None:
                        seen.add(port_id)
                    continue
                port_id, differs = self._update(key, raw)
                if port_id is not None:
                    seen.add(port_id)
                    if differs:
                        changed.add(port_id)
            for port_id in (set(self._ports) | set(self._rejections)) - seen:
                changed.add(port_id)
                self._forget(port_id)
            return changed

    def apply(self, events: Iterable[Event]) -> set[str]:
        """Apply watch events; returns the port ids that changed."""
        changed: set[str] = set()
        with self._lock:
            for ev in events:
                if ev.kind == "put" and ev.value is not None:
                    port_id, _ = self._update(ev.key, ev.value)
                else:
                    port_id = self._port_id(ev.key)
                    if port_id is not None:
                        self._forget(port_id)
                if port_id is not None:
                    changed.add(port_id)
        return changed

    def _port_id(self, key: str, quiet: bool = False) -> str | None:
        """The port a key of ours names; None (rejected, unless ``quiet``) if none."""
        try:
            host, port_id = self._keys.parse_port(key)
        except k.BadKey as exc:
            if not quiet:
                self._reject(key, str(exc))
            return None
        if host != self._host:
            if not quiet:
                self._reject(key, f"key is for host {host!r}, this agent serves {self._host!r}")
            return None
        return port_id

    def _update(self, key: str, raw: bytes) -> tuple[str | None, bool]:
        """Store one value; returns (port id, whether it differs from before)."""
        port_id = self._port_id(key)
        if port_id is None:
            return None, False
        if self._raw.get(port_id) == raw:
            return port_id, False
        try:
            binding = model.decode(model.PortBinding, key, raw)
            if binding.port_id != port_id:
                raise model.BadValue(key, f"port_id {binding.port_id!r} does not match the key")
            problem = portnames.endpoint_problem(binding, self._socket_dir)
            if problem:
                raise model.BadValue(key, problem)
        except model.BadValue as exc:
            # The last good value stays (see the module's docstring); the port
            # is reconciled again so that its report says why.
            self._reject(key, exc.reason)
            self._raw[port_id] = raw
            last = self._ports.get(port_id)
            self._rejections[port_id] = Rejection(
                f"bad value: {exc.reason}",
                _binding_id(raw) or (last.binding_id if last is not None else ""),
            )
            return port_id, True
        self.rejected.pop(key, None)
        self._forget(port_id)
        self._ports[port_id] = binding
        self._raw[port_id] = raw
        for sg in binding.security_groups:
            self._by_group.setdefault(sg, set()).add(port_id)
        return port_id, True

    def _forget(self, port_id: str) -> None:
        old = self._ports.pop(port_id, None)
        self._raw.pop(port_id, None)
        if self._rejections.pop(port_id, None) is not None:
            self.rejected.pop(self._keys.port(self._host, port_id), None)
        for sg in old.security_groups if old else ():
            self._by_group.get(sg, set()).discard(port_id)

    def _reject(self, key: str, reason: str) -> None:
        self.rejected_total += 1
        self.rejected[key] = reason
        LOG.error("Bad value at %s, not used (the last good one stays): %s", key, reason)


def _binding_id(raw: bytes) -> str | None:
    """The ``binding_id`` a refused value names, if it is readable at all."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    binding_id = data.get("binding_id") if isinstance(data, dict) else None
    return binding_id if isinstance(binding_id, str) and binding_id else None


class SecGroupCache:
    """Security groups and remote-group memberships from ``/global/``.

    Changes come back as work keys: ``("sg", sg_id)`` for a group whose rules
    changed, and ``("sg", s)`` for every group ``s`` whose rules name a remote
    group whose membership changed (its compiled ACL expands the members).
    """

    def __init__(self, keyspace: k.KeySpace) -> None:
        self._keys = keyspace
        self.groups: dict[str, model.SecurityGroup] = {}
        self.members: dict[str, dict[str, tuple[str, ...]]] = {}  # rg -> port -> ips
        self._raw: dict[str, bytes] = {}
        self._referrers: dict[str, set[str]] = {}  # rg -> groups naming it
        self._lock = threading.Lock()
        self.rejected: dict[str, str] = {}
        self.rejected_total = 0

    def member_ips(self, rg: str) -> list[str]:
        """Every address of every member port of remote group ``rg``."""
        with self._lock:
            return [ip for ips in self.members.get(rg, {}).values() for ip in ips]

    def remote_members(self, group: model.SecurityGroup) -> dict[str, list[str]]:
        """Member addresses of every remote group the group's rules name."""
        wanted = {r.remote_group_id for r in group.rules if r.remote_group_id}
        return {rg: self.member_ips(rg) for rg in wanted}

    def replace(self, snapshot: dict[str, bytes]) -> set[tuple[str, str]]:
        """Replace everything with a full load; returns the work keys that changed."""
        with self._lock:
            changed: set[tuple[str, str]] = set()
            for key in set(self._raw) - set(snapshot):
                changed |= self._remove(key)
            for key, raw in snapshot.items():
                if self._raw.get(key) != raw:
                    changed |= self._put(key, raw)
            return changed

    def apply(self, events: Iterable[Event]) -> set[tuple[str, str]]:
        """Apply watch events; returns the work keys that changed."""
        changed: set[tuple[str, str]] = set()
        with self._lock:
            for ev in events:
                if ev.kind == "put" and ev.value is not None:
                    changed |= self._put(ev.key, ev.value)
                else:
                    changed |= self._remove(ev.key)
        return changed

    def _put(self, key: str, raw: bytes) -> set[tuple[str, str]]:
        try:
            kind, ids = self._keys.parse_global(key)
            if kind == "secgroups":
                group = model.decode(model.SecurityGroup, key, raw)
                if group.sg_id != ids[0]:
                    raise model.BadValue(key, f"sg_id {group.sg_id!r} does not match the key")
            else:
                member = model.decode(model.RemoteGroupMember, key, raw)
                if member.port_id != ids[1]:
                    raise model.BadValue(key, f"port_id {member.port_id!r} does not match")
        except (k.BadKey, model.BadValue) as exc:
            reason = exc.reason if isinstance(exc, model.BadValue) else str(exc)
            self.rejected_total += 1
            self.rejected[key] = reason
            # As for ports: the last good value stays. Rules dropped for a value
            # that cannot be read would cut the group's ports off.
            LOG.error("Bad value at %s, not used (the last good one stays): %s", key, reason)
            return set()
        self.rejected.pop(key, None)
        self._raw[key] = raw
        if kind == "secgroups":
            self._index(group.sg_id, group)
            self.groups[group.sg_id] = group
            return {("sg", group.sg_id)}
        self.members.setdefault(ids[0], {})[ids[1]] = member.ips
        return {("sg", s) for s in self._referrers.get(ids[0], ())}

    def _remove(self, key: str) -> set[tuple[str, str]]:
        if self._raw.pop(key, None) is None:
            return set()
        kind, ids = self._keys.parse_global(key)
        if kind == "secgroups":
            self._index(ids[0], None)
            self.groups.pop(ids[0], None)
            return {("sg", ids[0])}
        self.members.get(ids[0], {}).pop(ids[1], None)
        return {("sg", s) for s in self._referrers.get(ids[0], ())}

    def _index(self, sg_id: str, group: model.SecurityGroup | None) -> None:
        for refs in self._referrers.values():
            refs.discard(sg_id)
        for rule in group.rules if group else ():
            if rule.remote_group_id:
                self._referrers.setdefault(rule.remote_group_id, set()).add(sg_id)

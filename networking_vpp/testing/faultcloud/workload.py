"""Port traffic through Neutron's API from a few client threads, faults or not.

Each client thread owns a few port slots and runs a random mix of operations on
them: create, bind to a host, update, rebind to another host, unbind, delete.
Clients never share a port, so each port's operations are sequential and the
order of its committed changes is known.

Every request that changes a port carries a fresh **marker** as ``device_id``
(creates also as ``name``). ``device_id`` is part of the etcd binding value, so
each committed change of a bound port is a distinct, recognisable value.

A request that gets no answer (its worker was SIGKILLed, a 5xx, a timeout) is
*settled*: the client reads the port back and decides whether the change was
applied (the marker is there) or not, and checks that the journal agrees (the
audit holds a write with that marker exactly when the database has it). A
partially applied change is one of two kinds: Neutron's own two-step binding
(the host is recorded in one transaction, the binding committed in a second:
the worker died between them) is counted as ``half_bound`` and completed by
the retry; anything else is an inconsistency. Then the operation is retried,
with a new marker, until it is answered.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

from networking_vpp.testing.faultcloud.history import JournalAudit
from networking_vpp.testing.faultcloud.neutron_api import ApiError, NeutronApi, NoAnswer, bound_host

LOG = logging.getLogger(__name__)

OP_DEADLINE = 300.0  # one operation, retries included, must complete within this


@dataclasses.dataclass
class PortModel:
    """What a client knows about one of its ports (the last answered state)."""

    port_id: str
    name: str
    device_id: str
    host: str | None = None  # binding:host_id
    bound: str | None = None  # the host it is bound to by our driver


@dataclasses.dataclass
class WorkloadStats:
    """Counters of one run (all threads)."""

    ops: int = 0  # mutating requests sent, retries included
    answered: int = 0
    by_kind: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    interrupted: int = 0  # no answer: outcome unknown until settled
    applied: int = 0  # ... then found applied
    not_applied: int = 0  # ... then found not applied
    half_bound: int = 0  # ... then found host recorded but binding not committed (Neutron)
    inconsistent: list[str] = dataclasses.field(default_factory=list)  # must stay empty
    refused: list[str] = dataclasses.field(default_factory=list)  # 4xx: must stay empty
    binding_failed: int = 0  # answered, but the port could not be bound (host not alive)

    def summary(self) -> str:
        return (
            f"{self.ops} API operations ({dict(sorted(self.by_kind.items()))}), "
            f"{self.interrupted} without answer: {self.applied} applied, "
            f"{self.not_applied} not applied, {self.half_bound} half-bound by Neutron "
            f"(completed by the retry), {len(self.inconsistent)} inconsistent; "
            f"{self.binding_failed} binding failures"
        )


class PortWorkload:
    """``clients`` threads sharing a budget of ``ops`` operations."""

    def __init__(
        self,
        api_url: str,
        audit: JournalAudit,
        networks: Sequence[str],
        hosts: Sequence[str],
        *,
        clients: int = 4,
        ops: int = 520,
        slots: int = 3,
        seed: int = 0,
        tag: str = "fx",
    ) -> None:
        self.api_url = api_url
        self.audit = audit
        self.networks = list(networks)
        self.hosts = list(hosts)
        self.clients = clients
        self.budget = ops
        self.slots = slots
        self.seed = seed
        self.tag = tag
        self.stats = WorkloadStats()
        self.ports: dict[str, PortModel] = {}  # every port alive at the end, by id
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._marker = 0

    # --- control ----------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self.clients):
            thread = threading.Thread(
                target=self._client, args=(i,), name=f"client-{i}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def done_ops(self) -> int:
        with self._lock:
            return self.stats.ops

    def stop(self) -> None:
        """Ask the clients to finish their current operation and stop."""
        self._stop.set()

    def join(self, timeout: float) -> None:
        """Wait for every client; re-raise the first error a client hit."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.running:
            raise AssertionError(f"workload clients still running after {timeout:.0f}s")
        if self.errors:
            raise self.errors[0]

    def differences(self, api: NeutronApi) -> list[str]:
        """Ports whose state differs from what the last answered request returned.

        Run after :meth:`join`: every port this workload made and did not delete
        must exist with the last marker and binding; no deleted one may exist.
        """
        out = []
        ours = {p["id"]: p for p in api.list("ports") if p["name"].startswith(self.tag + "-")}
        for port_id, port in self.ports.items():
            now = ours.pop(port_id, None)
            if now is None:
                out.append(f"{port_id} is gone")
            elif now["device_id"] != port.device_id or bound_host(now) != port.bound:
                out.append(
                    f"{port_id}: device_id {now['device_id']} bound {bound_host(now)}, "
                    f"expected {port.device_id} bound {port.bound}"
                )
        out += [f"{port_id} exists but was deleted" for port_id in ours]
        return out

    def cleanup(self, api: NeutronApi) -> None:
        """Delete every port the workload left."""
        for port_id in list(self.ports):
            api.delete_quietly("ports", port_id)
            del self.ports[port_id]

    # --- one client -------------------------------------------------------------------------
    def _take(self) -> bool:
        with self._lock:
            if self.budget <= 0 or self._stop.is_set():
                return False
            self.budget -= 1
            return True

    def _new_marker(self, client: int) -> str:
        with self._lock:
            self._marker += 1
            return f"{self.tag}-c{client}-{self._marker:06d}"

    def _client(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        api = NeutronApi(self.api_url)
        audit = self.audit.connect()
        slots: list[PortModel | None] = [None] * self.slots
        try:
            while self._take():
                slot = rng.randrange(self.slots)
                port = slots[slot]
                if port is None:
                    slots[slot] = self._create(api, audit, index, rng)
                    continue
                if port.bound:
                    kind = rng.choices(["update", "rebind", "unbind", "delete"], [35, 25, 20, 20])[
                        0
                    ]
                else:
                    kind = rng.choices(["bind", "update", "delete"], [60, 20, 20])[0]
                if kind == "delete":
                    self._delete(api, port)
                    slots[slot] = None
                    continue
                host = port.bound
                if kind in ("bind", "rebind"):
                    host = rng.choice([h for h in self.hosts if h != port.bound])
                elif kind == "unbind":
                    host = ""
                self._update(api, audit, index, port, kind, host)
        except BaseException as exc:  # noqa: BLE001 - surfaced by join()
            LOG.exception("client %d failed", index)
            self.errors.append(exc)
        finally:
            with self._lock:
                for port in slots:
                    if port is not None:
                        self.ports[port.port_id] = port
            api.close()
            audit.close()

    def _count(self, kind: str) -> None:
        with self._lock:
            self.stats.ops += 1
            self.stats.by_kind[kind] += 1

    def _record(self, field: str, note: str | None = None) -> None:
        with self._lock:
            if note is None:
                setattr(self.stats, field, getattr(self.stats, field) + 1)
            else:
                getattr(self.stats, field).append(note)

    # --- operations ---------------------------------------------------------------------------
    def _create(
        self, api: NeutronApi, audit: JournalAudit, client: int, rng: random.Random
    ) -> PortModel:
        network = rng.choice(self.networks)
        deadline = time.monotonic() + OP_DEADLINE
        while True:
            marker = self._new_marker(client)
            self._count("create")
            try:
                port = api.create_port(
                    network_id=network, name=marker, device_owner="compute:nova", device_id=marker
                )
                self._record("answered")
                return PortModel(port["id"], marker, marker)
            except NoAnswer as exc:
                self._record("interrupted")
                LOG.info("create %s: %s; settling", marker, exc)
                found = api.list("ports", name=marker)
                if len(found) > 1:
                    self._record("inconsistent", f"create {marker} made {len(found)} ports")
                if found:
                    self._record("applied")
                    return PortModel(found[0]["id"], marker, marker)
                self._record("not_applied")
            except ApiError as exc:
                self._record("refused", f"create {marker}: {exc}")
            if time.monotonic() > deadline:
                raise AssertionError(f"create on {network} did not complete in {OP_DEADLINE}s")

    def _delete(self, api: NeutronApi, port: PortModel) -> None:
        deadline = time.monotonic() + OP_DEADLINE
        while True:
            self._count("delete")
            try:
                api.delete_port(port.port_id)
                self._record("answered")
                return
            except NoAnswer as exc:
                self._record("interrupted")
                LOG.info("delete %s: %s; settling", port.port_id, exc)
                if api.get_port(port.port_id) is None:
                    self._record("applied")
                    return
                self._record("not_applied")
            except ApiError as exc:
                if exc.status == 404:  # an earlier, unanswered attempt did it
                    return
                self._record("refused", f"delete {port.port_id}: {exc}")
            if time.monotonic() > deadline:
                raise AssertionError(f"delete of {port.port_id} did not complete")

    def _update(
        self,
        api: NeutronApi,
        audit: JournalAudit,
        client: int,
        port: PortModel,
        kind: str,
        host: str | None,
    ) -> None:
        """bind / rebind / unbind / update: one PUT with a fresh marker, settled if unanswered."""
        deadline = time.monotonic() + OP_DEADLINE
        while True:
            marker = self._new_marker(client)
            attrs: dict[str, Any] = {"device_id": marker}
            if kind != "update":
                attrs["binding:host_id"] = host
            self._count(kind)
            try:
                after = api.update_port(port.port_id, **attrs)
                self._record("answered")
                self._adopt(port, after, kind)
                return
            except NoAnswer as exc:
                self._record("interrupted")
                LOG.info("%s %s (%s): %s; settling", kind, port.port_id, marker, exc)
                if self._settle(api, audit, port, kind, host, marker):
                    return
            except ApiError as exc:
                self._record("refused", f"{kind} {port.port_id}: {exc}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{kind} of {port.port_id} did not complete")

    def _adopt(self, port: PortModel, after: dict[str, Any], kind: str) -> None:
        port.device_id = after["device_id"]
        port.host = after.get("binding:host_id") or None
        port.bound = bound_host(after)
        if port.host and after.get("binding:vif_type") == "binding_failed":
            self._record("binding_failed")
            LOG.warning(
                "%s of %s: not bound (%s)", kind, port.port_id, after.get("binding:vif_type")
            )

    def _settle(
        self,
        api: NeutronApi,
        audit: JournalAudit,
        port: PortModel,
        kind: str,
        host: str | None,
        marker: str,
    ) -> bool:
        """Was the unanswered change applied? True if nothing is left to do."""
        now = api.get_port(port.port_id)
        if now is None:
            self._record("inconsistent", f"{kind} {marker}: port {port.port_id} vanished")
            return True
        journaled = audit.mentions(marker)
        if now["device_id"] != marker:
            self._record("not_applied")
            if journaled:
                self._record(
                    "inconsistent", f"{kind} {marker}: journaled ({journaled}) but not in Neutron"
                )
            return False
        bound = bound_host(now)
        if kind in ("bind", "rebind") and now.get("binding:host_id") == host and bound is None:
            if now.get("binding:vif_type") == "unbound":
                # Neutron records the host in one transaction and commits the binding
                # in a second one; the worker died between the two.
                self._record("half_bound")
                self._adopt(port, now, kind)
                return False
        self._record("applied")
        if bound is not None and not journaled:
            self._record(
                "inconsistent", f"{kind} {marker}: in Neutron (bound on {bound}) but not journaled"
            )
        self._adopt(port, now, kind)
        return True


__all__ = ["PortModel", "PortWorkload", "WorkloadStats"]

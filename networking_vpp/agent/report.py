"""What the agent tells the server: liveness, physnets and per-port state.

Liveness is a readiness condition, as a Kubernetes node's Ready: the leased
``alive`` key exists only while the agent is connected to VPP and has finished
a resync (:meth:`Reporter.set_ready`), and a ``physnets/<name>`` key only while
that physnet's uplink interface exists in VPP (:meth:`Reporter.set_physnets`).
The server binds to a host only on both, so a port never goes to a host whose
data plane cannot carry it. The lease is held from start to stop whatever VPP
does: withdrawing a key is a delete under it, not the lease's end.

Port reports are written by one background thread in batched transactions, so
10,000 ports cost tens of etcd round trips rather than 10,000; only the latest
report per port is kept while etcd is slow or down, and a report identical to
the one already in etcd is never written again (an agent restart with nothing
changed writes nothing). While the agent has more work queued, the writer
gathers reports for up to :data:`COALESCE_SECONDS` after its last write: when
every VPP call blocks (as vpp_papi's do), it would otherwise wake for each
report and spend more on tiny transactions than the agent spends on ports.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import tenacity

from networking_vpp.common import keys as k
from networking_vpp.common import model, retry
from networking_vpp.common.etcd.client import EtcdClient, EtcdError
from networking_vpp.common.etcd.lease import LeasedKeys
from networking_vpp.common.etcd.writer import MAX_TXN_OPS, Delete, Put, write_batch

LOG = logging.getLogger(__name__)

AGENT_VERSION = "0.1.0"
#: how long after a write the writer gathers reports while more work is queued
COALESCE_SECONDS = 0.01
_GONE = None  # pending marker: delete the state key

Signature = tuple[str, str, str, model.Programmed | None]


class Reporter:
    """Writes ``/state/<host>/...`` for one agent."""

    def __init__(
        self,
        client: EtcdClient,
        keyspace: k.KeySpace,
        host: str,
        alive_ttl: int = 10,
        more_coming: Callable[[], bool] = lambda: False,
    ) -> None:
        self._client = client
        self._more_coming = more_coming  # whether reports are on their way
        self._keys = keyspace
        self._host = host
        self._lease = LeasedKeys(client, alive_ttl)
        self._started_at = time.time()
        self._ready = False  # the alive key is (being) written
        self._physnets: dict[str, str] = {}  # advertised: physnet -> uplink interface
        self._liveness = threading.Lock()  # the VPP-ping and the reconcile threads both call
        self._written: dict[str, Signature] = {}
        self._pending: dict[str, model.PortState | None] = {}
        self._inflight: dict[str, model.PortState | None] = {}  # being written now
        self._summary: model.HostSummary | None = None  # to write
        self._summary_written: model.HostSummary | None = None
        self._cond = threading.Condition()
        self._busy = False
        self._stop = False
        self._stopping = threading.Event()  # interrupt(): give up waiting for etcd
        self._idle = False  # the writer waits for reports (and wants a notify)
        self._written_at = 0.0  # monotonic time of the last write
        self._thread: threading.Thread | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="report")
        #: state writes done (batches), for tests and metrics
        self.flushes = 0

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Load what is already reported, take the liveness lease, start the writer.

        Nothing says the host is alive yet: see :meth:`set_ready`. Returns at
        once, having started nothing, once :meth:`interrupt` was called.
        """
        if not self._load_existing():
            return
        self._lease.start()
        self._thread = threading.Thread(target=self._run, name="reporter", daemon=True)
        self._thread.start()

    def interrupt(self) -> None:
        """Stop waiting for etcd in :meth:`start` (any thread, a signal handler too)."""
        self._stopping.set()

    def stop(self) -> None:
        """Stop writing; the liveness lease is revoked so the server sees us go."""
        self._stopping.set()
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False)
        self._lease.stop(revoke=True)

    # --- liveness -------------------------------------------------------------------
    def set_ready(self, ready: bool) -> None:
        """Whether the host may take ports: its VPP answers and a resync is done."""
        with self._liveness:
            if ready == self._ready:
                return
            self._ready = ready
            key = self._keys.alive(self._host)
            if ready:
                alive = model.HostAlive(self._host, AGENT_VERSION, self._started_at)
                self._lease.put(key, model.encode(alive))
            else:
                self._lease.delete(key)
        LOG.info("Host %s %s", self._host, "ready" if ready else "not ready: VPP is away")

    @property
    def ready(self) -> bool:
        """Whether the alive key is published (or being written)."""
        return self._ready

    def set_physnets(self, physnets: Mapping[str, str]) -> None:
        """Advertise exactly these physnets (physnet -> uplink interface in VPP)."""
        with self._liveness:
            for name in sorted(set(self._physnets) - set(physnets)):
                del self._physnets[name]
                self._lease.delete(self._keys.physnet(self._host, name))
                LOG.info("Physnet %s withdrawn: its uplink is not in VPP", name)
            for name, interface in sorted(physnets.items()):
                if self._physnets.get(name) != interface:
                    self._physnets[name] = interface
                    value = model.encode(model.HostPhysnet(name, interface))
                    self._lease.put(self._keys.physnet(self._host, name), value)
                    LOG.info("Physnet %s advertised: uplink %s is in VPP", name, interface)

    def _pause(self, seconds: float) -> None:
        """A retry's wait, cut short by :meth:`interrupt`."""
        self._stopping.wait(seconds)

    def _load_existing(self) -> bool:
        """Read what is reported already (it decides what is rewritten); False
        if interrupted before etcd answered."""
        prefix = self._keys.port_states_prefix(self._host)

        # Until etcd answers, or the agent is told to stop: the waits end early then.
        @tenacity.retry(
            wait=retry.wait(0.1, 2.0),
            stop=tenacity.stop_when_event_set(self._stopping),
            sleep=self._pause,
            retry=tenacity.retry_if_exception_type(EtcdError),
            before_sleep=lambda state: LOG.warning(
                "Cannot read our earlier reports yet (%s); retrying",
                state.outcome.exception() if state.outcome else "?",
            ),
        )
        def read() -> tuple[list[Any], Any]:
            kvs, _ = self._client.get_prefix(prefix)
            return kvs, self._client.get(self._keys.summary(self._host))

        kvs: list[Any]
        summary: Any
        try:
            kvs, summary = read()
        except tenacity.RetryError:
            return False  # interrupted
        if summary is not None:
            try:
                self._summary_written = model.decode(model.HostSummary, summary.key, summary.value)
            except model.BadValue as exc:
                LOG.warning("Replacing unreadable summary: %s", exc)
        for kv in kvs:
            try:
                state = model.decode(model.PortState, kv.key, kv.value)
            except model.BadValue as exc:
                LOG.warning("Replacing unreadable report: %s", exc)
                self._pending[self._keys.parse_state(kv.key).name] = _GONE
                continue
            self._written[state.port_id] = _signature(state)
        return True

    # --- reports -----------------------------------------------------------------
    def reported_ports(self) -> set[str]:
        """Ports that have a report in etcd (or one on its way)."""
        with self._cond:
            return set(self._written) | {p for p, s in self._pending.items() if s is not None}

    def port_waiting(self, port_id: str, binding_id: str, reason: str) -> None:
        """Nothing is programmed for the port until something outside VPP comes
        (its tap device), and why: a ``down`` report without ``programmed``."""
        self._queue(port_id, model.PortState(port_id, binding_id, "down", reason))

    def port_active(self, port_id: str, binding_id: str, programmed: model.Programmed) -> None:
        """The port is programmed (and, for vhost-user, the VM is connected)."""
        self._queue(port_id, model.PortState(port_id, binding_id, "active", "", programmed))

    def port_error(self, port_id: str, binding_id: str, reason: str) -> None:
        """The port cannot be programmed on this host, and why."""
        self._queue(port_id, model.PortState(port_id, binding_id, "error", reason))

    def port_down(
        self, port_id: str, binding_id: str, reason: str, programmed: model.Programmed | None
    ) -> None:
        """The port passes no traffic (admin down, no VM...), and why; ``programmed``:
        what VPP has for it, if anything.

        Said rather than left unsaid: the server sets the port DOWN, and an
        operator's health check tells it from a port the agent has not handled.
        """
        self._queue(port_id, model.PortState(port_id, binding_id, "down", reason, programmed))

    def port_gone(self, port_id: str) -> None:
        """The port is no longer bound here."""
        self._queue(port_id, _GONE)

    def _queue(self, port_id: str, state: model.PortState | None) -> None:
        with self._cond:
            if self._in_etcd(port_id) == (state and _signature(state)):
                self._pending.pop(port_id, None)
                return
            self._pending[port_id] = state
            if self._idle or len(self._pending) == MAX_TXN_OPS:
                self._cond.notify()  # work for it, or a full transaction's worth

    def _in_etcd(self, port_id: str) -> Signature | None:
        """What etcd holds for the port once the write in flight (if any) lands."""
        if port_id in self._inflight:
            state = self._inflight[port_id]
            return None if state is None else _signature(state)
        return self._written.get(port_id)

    def statuses(self) -> dict[str, str]:
        """Port id -> reported status ("active"/"down"/"error"), as etcd will have it."""
        with self._cond:
            out = {p: sig[1] for p, sig in self._written.items()}
            for port_id, state in {**self._inflight, **self._pending}.items():
                if state is None:
                    out.pop(port_id, None)
                else:
                    out[port_id] = state.status
            return out

    def set_summary(self, summary: model.HostSummary) -> None:
        """Publish the agent's own account (written only when it changed)."""
        with self._cond:
            if summary != self._summary_written:
                self._summary = summary
                if self._idle:
                    self._cond.notify()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued report is in etcd (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy or self._summary is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # --- the writer thread -----------------------------------------------------------
    def _run(self) -> None:
        backoff = retry.Backoff(0.1, 5.0)
        while True:
            with self._cond:
                self._idle = True
                while not self._pending and self._summary is None and not self._stop:
                    self._cond.wait()
                self._idle = False
                self._gather()
                if self._stop:
                    return
                batch, self._pending = self._pending, {}
                summary, self._summary = self._summary, None
                self._inflight = batch
                self._busy = True
            ops: list[Put | Delete] = []
            now = time.time()
            for port_id, state in batch.items():
                key = self._keys.port_state(self._host, port_id)
                if state is None:
                    ops.append(Delete(key))
                else:
                    state = model.PortState(
                        state.port_id,
                        state.binding_id,
                        state.status,
                        state.reason,
                        state.programmed,
                        reported_at=now,
                    )
                    ops.append(Put(key, model.encode(state)))
            if summary is not None:
                ops.append(Put(self._keys.summary(self._host), model.encode(summary)))
            try:
                self._write(ops)
            except EtcdError as exc:
                LOG.warning("Cannot write %d port reports (%s); will retry", len(ops), exc)
                with self._cond:
                    # Newer reports queued meanwhile win over the failed ones.
                    self._pending = {**batch, **self._pending}
                    if self._summary is None:
                        self._summary = summary
                    self._inflight = {}
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait(backoff.next_delay())
                continue
            backoff.reset()
            with self._cond:
                self._written_at = time.monotonic()
                self.flushes += 1
                if summary is not None:
                    self._summary_written = summary
                for port_id, state in batch.items():
                    if state is None:
                        self._written.pop(port_id, None)
                    else:
                        self._written[port_id] = _signature(state)
                self._inflight = {}
                self._busy = False
                self._cond.notify_all()

    def _gather(self) -> None:
        """While the agent is busy, let reports gather (under ``_cond``)."""
        due = self._written_at + COALESCE_SECONDS
        while not self._stop and len(self._pending) < MAX_TXN_OPS and self._more_coming():
            left = due - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)  # stop() wakes it

    def _write(self, ops: list[Put | Delete]) -> None:
        # One op per port in a batch, so its transactions are independent and
        # can be in flight together: etcd's latency, not its throughput, is
        # what limits a single writer.
        chunks = [ops[i : i + MAX_TXN_OPS] for i in range(0, len(ops), MAX_TXN_OPS)]
        if len(chunks) == 1:
            write_batch(self._client, ops)
            return
        for future in [self._pool.submit(write_batch, self._client, c) for c in chunks]:
            future.result()


def _signature(state: model.PortState) -> Signature:
    return (state.binding_id, state.status, state.reason, state.programmed)

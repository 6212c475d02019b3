"""Typed VPP operations for the agent: the only code that speaks VPP's API.

The adapter wraps a vpp_papi ``VPPApiClient`` (or anything with the same
``client.api.<message>(**fields)`` surface, such as the emulator in
``networking_vpp.testing.vpp``). Every call checks ``retval`` and raises
:class:`VppApiError` with VPP's error code; a broken connection raises
:class:`VppConnectionError`, after which the agent reconnects and resyncs.

Inside :meth:`VppAdapter.batch`, calls whose reply says only "done" are sent
without waiting (``pipeline.py``: many requests in flight, VPP answers them in
order) and their replies are checked when the batch ends, or earlier when a
call inside needs a reply's content (a create's index, a dump): that call is
sent too, and the batch waits for every reply up to it. Either way a failure
raises :class:`VppBatchError`, naming the failed messages.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from networking_vpp.agent.vpp import errors
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.acl import AclOps, after_done
from networking_vpp.agent.vpp.dumps import (
    IF_STATUS_API_FLAG_ADMIN_UP,
    IF_STATUS_API_FLAG_LINK_UP,
    DumpOps,
)
from networking_vpp.agent.vpp.pipeline import ONE_REPLY, Pipeline, PipelineBroken, Sent

LOG = logging.getLogger(__name__)

# l2_interface_vlan_tag_rewrite vtr_op (VPP's L2_VTR_* values)
L2_VTR_DISABLED = 0
L2_VTR_POP_1 = 3
# vl_api_l2_port_type_t
L2_API_PORT_TYPE_NORMAL = 0
# vl_api_af_packet_mode_t
AF_PACKET_API_ETHERNET_MODE = 1
# vl_api_af_packet_flags_t: what VPP's CLI ("create host-interface") sets. Without
# CKSUM_GSO the partial TCP/UDP checksums a kernel with TX checksum offload (a
# veth's default) hands over reach the far end unfixed, and TCP and UDP (DHCP
# included) fail; QDISC_BYPASS sends straight to the device, as the CLI does.
AF_PACKET_API_FLAG_QDISC_BYPASS = 1
AF_PACKET_API_FLAG_CKSUM_GSO = 2
AF_PACKET_FLAGS = AF_PACKET_API_FLAG_QDISC_BYPASS | AF_PACKET_API_FLAG_CKSUM_GSO
# The TX ring is most of an af_packet interface's memory: at VPP's default of
# 1,024 frames of 66 KB it is 69 MB of the ~78 MB measured per interface. The
# frame size stays (a GSO packet is up to 64 KB, and CKSUM_GSO offers GSO);
# 256 frames hold a whole VPP vector, and the kernel empties the ring at every
# sendto VPP makes after filling it: 17 MB. Not yet measured under load on a
# real VPP; 0 would restore VPP's default.
AF_PACKET_TX_FRAMES_PER_BLOCK = 256
# vl_api_rx_mode_t: a receive queue's mode, by the names [vpp_agent]
# vhostuser_rx_mode takes
RX_MODE_POLLING = 1
RX_MODES = {"polling": RX_MODE_POLLING, "interrupt": 2, "adaptive": 3}


class VppError(Exception):
    """Base of the adapter's errors."""


class VppConnectionError(VppError):
    """The API connection is gone (VPP stopped, restarted or the socket broke)."""


class VppUnreachable(VppConnectionError):
    """No connection could be made (VPP not running, its socket or API files missing)."""


class VppApiError(VppError):
    """VPP answered a request with a non-zero ``retval``.

    Said by VPP's name for the code (``errors.py``): the text ends up in port
    reports that operators read, where ``-56`` means nothing.
    """

    def __init__(self, message: str, retval: int) -> None:
        self.name = errors.name(retval)
        super().__init__(f"{message} failed: {self.name}")
        self.message = message
        self.retval = retval


class VppBatchError(VppApiError):
    """Requests of a batch failed: the first by its message and VPP's error name
    (``retval`` is its code), the others counted; ``failures`` lists them all."""

    def __init__(self, failures: list[tuple[str, int]]) -> None:
        message, retval = failures[0]
        super().__init__(message, retval)
        self.failures = failures
        if len(failures) > 1:
            more = ", ".join(f"{m} ({errors.name(r)})" for m, r in failures[1:])
            self.args = (f"{self.args[0]}; also failed: {more}",)


ClientFactory = Callable[[], Any]
EventCallback = Callable[[t.InterfaceEvent], None]
Then = Callable[[Any], None] | None  # given the reply, once in and good
Done = Callable[[], None] | None  # called once a change is done


class _Batch:
    """One :meth:`VppAdapter.batch`: the failures of its requests so far."""

    def __init__(self, pipeline: Pipeline | None) -> None:
        self.pipeline = pipeline  # None: the client is called one request at a time
        self.failures: list[tuple[str, int]] = []
        self.last: Sent | None = None  # its last request on the wire


Batch = _Batch  # what batch(wait=False) hands out, for settle()


class VppAdapter(DumpOps, AclOps):
    """Connection to one VPP and the operations the agent needs."""

    def __init__(
        self,
        client_factory: ClientFactory,
        name: str = "vpp-agent",
        address: str = "VPP's API socket",
        probe: Callable[[], bool] | None = None,
    ) -> None:
        """``address``: where VPP is expected (its API socket), for messages.
        ``probe``: a cheap look at whether VPP accepts connections now
        (``connect.socket_accepts``); None: no cheaper look than connecting."""
        self._factory = client_factory
        self._probe = probe
        self._name = name
        self.address = address
        self._client: Any = None
        self._pipeline: Pipeline | None = None  # on the client, if it is vpp_papi's
        self._lock = threading.RLock()  # vpp_papi clients are not thread-safe
        self._batch: _Batch | None = None  # the batch under way (its thread holds _lock)
        # Requests sent and not yet answered, in order, whichever batch sent them
        # (with the batch's callback for the reply): replies come in that order.
        self._inflight: list[tuple[Sent, Then, _Batch]] = []
        self._event_cb: EventCallback | None = None
        #: mutating calls made since connect: lets tests prove "nothing to do"
        self.mutations = 0
        #: API calls made and seconds spent waiting for VPP's answers (metrics)
        self.calls = 0
        self.call_seconds = 0.0
        #: the most requests that were ever in flight at once
        self.most_in_flight = 0
        #: times the agent waited for VPP's replies (round trips, however many
        #: requests each; not counting replies that were in already)
        self.waits = 0

    # --- connection ----------------------------------------------------------
    def connect(self) -> None:
        """(Re)connect and subscribe to interface events."""
        with self._lock:
            self.disconnect()
            try:
                client = self._factory()
                client.connect(self._name)
            except Exception as exc:  # noqa: BLE001 - vpp_papi raises its own types too
                raise VppUnreachable(f"VPP not reachable at {self.address}: {exc}") from exc
            client.register_event_callback(self._on_message)
            self._client = client
            self._pipeline = Pipeline(client) if Pipeline.supports(client) else None
            self._inflight = []
            self._call("want_interface_events", enable_disable=1, pid=0)

    def probe(self) -> bool:
        """Whether a :meth:`connect` now may succeed (True when there is no
        cheaper way to know than trying)."""
        return True if self._probe is None else self._probe()

    def disconnect(self) -> None:
        """Drop the connection, ignoring errors from a VPP that is already gone."""
        with self._lock:
            client, self._client = self._client, None
            self._pipeline = None
            self._inflight = []
            if client is not None:
                try:
                    client.disconnect()
                except Exception:  # noqa: BLE001 - it is gone either way
                    LOG.debug("disconnect from VPP failed", exc_info=True)

    @property
    def connected(self) -> bool:
        """Whether a connection is up (as far as we know)."""
        return self._client is not None

    def on_interface_event(self, callback: EventCallback) -> None:
        """Call ``callback`` (from VPP's event thread) on interface state changes."""
        self._event_cb = callback

    def ping(self) -> None:
        """A cheap round trip that fails if VPP went away."""
        self._call("control_ping")

    def _on_message(self, msg_name: str, msg: Any) -> None:
        if msg_name != "sw_interface_event" or self._event_cb is None:
            return
        flags = int(msg.flags)
        self._event_cb(
            t.InterfaceEvent(
                sw_if_index=int(msg.sw_if_index),
                admin_up=bool(flags & IF_STATUS_API_FLAG_ADMIN_UP),
                link_up=bool(flags & IF_STATUS_API_FLAG_LINK_UP),
                deleted=bool(msg.deleted),
            )
        )

    def _call(self, message: str, **fields: Any) -> Any:
        """A request whose answer is needed (a dump, a read)."""
        return self._send(message, fields, False)

    def _mutate(self, message: str, **fields: Any) -> Any:
        """A change whose reply's content is needed (a create's index, say)."""
        return self._send(message, fields, True)

    def _command(self, message: str, then: Then = None, **fields: Any) -> None:
        """A change whose reply says only whether it was done: in a batch, sent
        without waiting (``then`` gets the reply once it is in and good)."""
        with self._lock:  # another thread's batch ends first
            batch = self._batch
            if batch is None:
                reply = self._send(message, fields, True)
            elif batch.pipeline is None:
                # Called at once, but failures wait for the batch's end, as they
                # would on the wire (VPP goes on with the requests behind one).
                try:
                    reply = self._send(message, fields, True, batch=False)
                except VppApiError as exc:
                    batch.failures.append((message, exc.retval))
                    return
            else:
                if self._client is None:
                    raise VppConnectionError("not connected to VPP")
                self._write(batch, message, fields, then)
                self.mutations += 1
                return
        if then is not None:
            then(reply)

    def _query(self, message: str, got: Callable[[Any], None], **fields: Any) -> None:
        """A read whose answer (a dump's rows) ``got`` takes: in a batch, sent
        without waiting, ``got`` running once the answer is in; else at once."""
        with self._lock:
            batch = self._batch
            if batch is not None and batch.pipeline is not None:
                if self._client is None:
                    raise VppConnectionError("not connected to VPP")
                self._write(batch, message, fields, got)
                return
        got(self._call(message, **fields))

    def _write(self, batch: _Batch, message: str, fields: dict[str, Any], then: Then) -> Sent:
        assert batch.pipeline is not None
        started = time.perf_counter()
        try:
            sent = batch.pipeline.send(message, fields)
        except (OSError, ConnectionError) as exc:
            self._client = None
            raise VppConnectionError(f"{message}: connection lost: {exc}") from exc
        finally:
            self.calls += 1
            self.call_seconds += time.perf_counter() - started
        self._inflight.append((sent, then, batch))
        self.most_in_flight = max(self.most_in_flight, len(self._inflight))
        batch.last = sent
        return sent

    def _send(
        self, message: str, fields: dict[str, Any], mutating: bool, batch: bool = True
    ) -> Any:
        # The hot path of every port: one call, checked, counted (no extra copies).
        with self._lock:
            client = self._client
            if client is None:
                raise VppConnectionError("not connected to VPP")
            current = self._batch if batch else None
            if current is not None and current.pipeline is not None:
                # In flight behind the batch's requests: one wait for them all.
                # Their failures stay the batch's (raised at its end); this
                # call's answer is the caller's, as outside a batch.
                sent = self._write(current, message, fields, None)
                if mutating:
                    self.mutations += 1
                self._collect(own=sent)
                reply = Pipeline.answer(sent)
            elif self._pipeline is not None:
                # One request on the pipeline: vpp_papi's synchronous call
                # would format a debug line and keep statistics every time.
                single = _Batch(self._pipeline)
                sent = self._write(single, message, fields, None)
                if mutating:
                    self.mutations += 1
                self._collect(own=sent)
                reply = Pipeline.answer(sent)
            else:
                started = time.perf_counter()
                try:
                    reply = getattr(client.api, message)(**fields)
                except (OSError, ConnectionError) as exc:
                    self._client = None
                    raise VppConnectionError(f"{message}: connection lost: {exc}") from exc
                finally:
                    self.calls += 1
                    self.call_seconds += time.perf_counter() - started
                if mutating:
                    self.mutations += 1
        if type(reply) is list:
            return reply
        if type(reply) is tuple and len(reply) == 2 and type(reply[1]) is list:
            reply = reply[0]  # "modern" stream: (reply, details)
        retval = getattr(reply, "retval", 0)
        if retval != 0:
            if current is not None and current.failures:
                # Said together with the batch's earlier failures, first first.
                failures, current.failures = current.failures, []
                raise VppBatchError([*failures, (message, retval)])
            raise VppApiError(message, retval)
        return reply

    # --- batches -----------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self, wait: bool = True) -> Iterator[_Batch]:
        """Send the changes made inside without waiting for each reply.

        VPP serves a connection's requests in order, so the order of the calls
        is the order VPP applies them; one that fails does not stop those
        behind it. Raises :class:`VppBatchError` at the end (or at the first
        call inside whose answer is needed) if any failed. A batch inside a
        batch is part of it. Other threads' calls wait for the batch's end.

        ``wait=False``: the batch ends without waiting for its replies; its
        caller waits later with :meth:`settle` (meanwhile other batches may
        be sent: what ``reconcile_many`` does to keep many ports in flight;
        it holds :meth:`exclusive` throughout).
        """
        with self._lock:
            if self._batch is not None:
                yield self._batch
                return
            client = self._client
            if client is None:
                raise VppConnectionError("not connected to VPP")
            batch = _Batch(self._pipeline)
            self._batch = batch
            try:
                yield batch
            except BaseException:
                self._batch = None
                self._drain(batch)
                raise
            self._batch = None
            if wait:
                self._flush(batch)

    def settle(self, batch: _Batch) -> None:
        """Wait for a ``wait=False`` batch's replies (and those sent before them);
        raise its failures, if any."""
        with self._lock:
            self._flush(batch)

    def checkpoint(self) -> None:
        """Inside a batch: wait for what it has sent and raise its failures
        now, before what follows is sent (VPP goes on past a failed request:
        a filter must be known to be on before admin-up or the tag that says
        so). Outside a batch every call has been answered already."""
        with self._lock:
            if self._batch is not None:
                self._flush(self._batch)

    def exclusive(self) -> contextlib.AbstractContextManager[Any]:
        """Hold the connection: no other thread's call reads a reply meanwhile
        (nor runs a batch's callbacks) until the block ends."""
        return self._lock

    def _flush(self, batch: _Batch) -> None:
        """Wait for the batch's replies (and those sent before them: they come
        first); raise its failures, if any."""
        if batch.last is not None:
            self._collect(through=batch.last)
            batch.last = None
        self._raise_failures(batch)

    def _collect(self, own: Sent | None = None, through: Sent | None = None) -> None:
        """Wait for the replies in flight up to ``through`` (or ``own``, or all)
        and record how each went, in order: a failure in the batch that sent
        it, a success by the request's callback (``own``: a call whose caller
        judges its reply). Requests sent after it stay in flight."""
        if not self._inflight:
            return
        assert self._pipeline is not None
        last = through or own
        if last is None or self._inflight[-1][0] is last:
            inflight, self._inflight = self._inflight, []
        else:
            upto = next((i for i, s in enumerate(self._inflight) if s[0] is last), -1) + 1
            if not upto:
                return  # collected already
            inflight, self._inflight = self._inflight[:upto], self._inflight[upto:]
        started = time.perf_counter()
        try:
            if self._pipeline.collect([s for s, _, _ in inflight]):
                self.waits += 1
        except (PipelineBroken, OSError) as exc:
            self._client = None
            raise VppConnectionError(str(exc)) from exc
        finally:
            self.call_seconds += time.perf_counter() - started
        for s, then, batch in inflight:
            if s is own:
                continue
            retval = getattr(s.reply, "retval", 0)
            if retval != 0:
                batch.failures.append((s.message, retval))
            elif then is not None:
                then(s.reply if s.kind == ONE_REPLY else Pipeline.answer(s))

    @staticmethod
    def _raise_failures(batch: _Batch) -> None:
        if batch.failures:
            failures, batch.failures = batch.failures, []
            raise VppBatchError(failures)

    def _drain(self, batch: _Batch) -> None:
        """A batch left by an exception: read its replies (the connection stays
        in step) and log what failed, which the exception under way hides."""
        if self._client is None:
            return
        try:
            self._flush(batch)
        except VppBatchError as exc:
            LOG.warning("Left with an error pending: %s", exc)
        except VppConnectionError:
            LOG.debug("connection lost while draining a batch", exc_info=True)

    # --- interfaces ------------------------------------------------------------
    def create_vhost_user(self, socket: str, is_server: bool, mac: str, tag: str) -> int:
        """A vhost-user interface with the port's MAC; returns its sw_if_index."""
        reply = self._mutate("create_vhost_user_if_v2", **_vhost_user(socket, is_server, mac, tag))
        return int(reply.sw_if_index)

    def add_vhost_user(
        self, socket: str, is_server: bool, mac: str, tag: str, made: Callable[[int], None]
    ) -> None:
        """:meth:`create_vhost_user` without waiting inside a batch: ``made``
        gets the new interface's index once VPP's reply is in."""
        self._command(
            "create_vhost_user_if_v2",
            then=lambda reply: made(int(reply.sw_if_index)),
            **_vhost_user(socket, is_server, mac, tag),
        )

    def delete_vhost_user(self, sw_if_index: int) -> None:
        """Remove a vhost-user interface."""
        self._command("delete_vhost_user_if", sw_if_index=sw_if_index)

    def create_af_packet(self, host_if_name: str, tag: str) -> int:
        """Attach to kernel interface ``host_if_name``; returns the new sw_if_index."""
        reply = self._mutate(
            "af_packet_create_v3",
            mode=AF_PACKET_API_ETHERNET_MODE,
            use_random_hw_addr=True,
            host_if_name=host_if_name,
            flags=AF_PACKET_FLAGS,
            tx_frames_per_block=AF_PACKET_TX_FRAMES_PER_BLOCK,
            num_rx_queues=1,
            num_tx_queues=1,
        )
        sw_if_index = int(reply.sw_if_index)
        self.set_tag(sw_if_index, tag)
        return sw_if_index

    def delete_af_packet(self, host_if_name: str) -> None:
        """Detach from a kernel interface."""
        self._command("af_packet_delete", host_if_name=host_if_name)

    def create_vlan_subif(self, parent: int, vlan: int, tag: str | None = None) -> int:
        """A dot1q sub-interface ``<parent>.<vlan>`` (tagged ``tag``, if given);
        returns its sw_if_index."""
        reply = self._mutate("create_vlan_subif", sw_if_index=parent, vlan_id=vlan)
        sw_if_index = int(reply.sw_if_index)
        if tag is not None:
            self.set_tag(sw_if_index, tag)
        return sw_if_index

    def create_default_subif(self, parent: int, sub_id: int) -> int:
        """A default sub-interface ``<parent>.<sub_id>``: every tagged frame no
        other sub-interface takes (left admin down, it drops them)."""
        reply = self._mutate("create_subif", **_default_subif(parent, sub_id))
        return int(reply.sw_if_index)

    def add_default_subif(self, parent: int, sub_id: int, made: Callable[[int], None]) -> None:
        """:meth:`create_default_subif` without waiting inside a batch: ``made``
        gets the new sub-interface's index once VPP's reply is in."""
        self._command(
            "create_subif",
            then=lambda reply: made(int(reply.sw_if_index)),
            **_default_subif(parent, sub_id),
        )

    def set_efp_filter(self, sw_if_index: int, enable: bool = True) -> None:
        """Egress VLAN filtering: drop a frame leaving the interface unless its
        tags would bring it back in on that same interface."""
        self._command("l2_interface_efp_filter", sw_if_index=sw_if_index, enable_disable=enable)

    def delete_subif(self, sw_if_index: int) -> None:
        """Remove a sub-interface."""
        self._command("delete_subif", sw_if_index=sw_if_index)

    def set_vlan_pop1(self, sw_if_index: int) -> None:
        """Pop the outer tag on input, push it back on output."""
        self._command(
            "l2_interface_vlan_tag_rewrite",
            sw_if_index=sw_if_index,
            vtr_op=L2_VTR_POP_1,
            push_dot1q=1,
        )

    def set_tag(self, sw_if_index: int, tag: str, then: Done = None) -> None:
        """Set the interface's tag (the agent's memory across restarts)."""
        self._command(
            "sw_interface_tag_add_del",
            after_done(then),
            is_add=True,
            sw_if_index=sw_if_index,
            tag=tag,
        )

    def set_admin_up(self, sw_if_index: int, up: bool, then: Done = None) -> None:
        """Set the admin state (``then``: called once done, see :meth:`batch`)."""
        flags = IF_STATUS_API_FLAG_ADMIN_UP if up else 0
        self._command(
            "sw_interface_set_flags", after_done(then), sw_if_index=sw_if_index, flags=flags
        )

    def set_rx_mode(self, sw_if_index: int, mode: int) -> None:
        """Put every receive queue the interface has in ``mode`` (RX_MODES).

        VPP accepts it for an interface without queues and keeps nothing: a
        vhost-user interface has them only once its VM has started them.
        """
        self._command(
            "sw_interface_set_rx_mode",
            sw_if_index=sw_if_index,
            queue_id_valid=False,
            queue_id=0,
            mode=mode,
        )

    def set_mtu(self, sw_if_index: int, mtu: int, then: Done = None) -> None:
        """Set the L3, IPv4, IPv6 and MPLS MTU (the port's MTU)."""
        self._command(
            "sw_interface_set_mtu",
            after_done(then),
            sw_if_index=sw_if_index,
            mtu=[mtu, mtu, mtu, mtu],
        )

    # --- bridge domains ----------------------------------------------------------
    def create_bridge_domain(self, tag: str, mac_age: int = 0) -> int:
        """A learning, flooding bridge domain whose learnt MACs age out after
        ``mac_age`` minutes (0: never); VPP picks the id, which is returned."""
        reply = self._mutate(
            "bridge_domain_add_del_v2",
            bd_id=t.NO_INDEX,
            flood=True,
            uu_flood=True,
            forward=True,
            learn=True,
            arp_term=False,
            mac_age=mac_age,
            bd_tag=tag,
            is_add=True,
        )
        return int(reply.bd_id)

    def set_learn_limit(self, bd_id: int, limit: int) -> None:
        """Learn at most ``limit`` MACs in the bridge domain (VPP forwards frames
        from further MACs without learning them). No dump shows it."""
        self._command("bridge_domain_set_learn_limit", bd_id=bd_id, learn_limit=limit)

    def set_mac_age(self, bd_id: int, minutes: int, then: Done = None) -> None:
        """How long a MAC learnt in the bridge domain lives (0: for ever)."""
        self._command("bridge_domain_set_mac_age", after_done(then), bd_id=bd_id, mac_age=minutes)

    def delete_bridge_domain(self, bd_id: int) -> None:
        """Remove an (empty) bridge domain."""
        self._command("bridge_domain_add_del_v2", bd_id=bd_id, is_add=False)

    def set_bridge(self, sw_if_index: int, bd_id: int, then: Done = None) -> None:
        """Put the interface into the bridge domain."""
        self._command(
            "sw_interface_set_l2_bridge",
            after_done(then),
            rx_sw_if_index=sw_if_index,
            bd_id=bd_id,
            port_type=L2_API_PORT_TYPE_NORMAL,
            shg=0,
            enable=True,
        )

    def unset_bridge(self, sw_if_index: int) -> None:
        """Take the interface out of its bridge domain (back to L3 mode)."""
        self._command(
            "sw_interface_set_l2_bridge", rx_sw_if_index=sw_if_index, bd_id=0, enable=False
        )


def _vhost_user(socket: str, is_server: bool, mac: str, tag: str) -> dict[str, Any]:
    """``create_vhost_user_if_v2``'s fields: the port's MAC, not one VPP picks."""
    return {
        "is_server": is_server,
        "sock_filename": socket,
        "use_custom_mac": True,
        "mac_address": mac,
        "tag": tag,
    }


def _default_subif(parent: int, sub_id: int) -> dict[str, Any]:
    """``create_subif``'s fields for a default sub-interface of ``parent``."""
    return {
        "sw_if_index": parent,
        "sub_id": sub_id,
        "sub_if_flags": t.SUB_IF_DEFAULT,
        "outer_vlan_id": 0,
        "inner_vlan_id": 0,
    }

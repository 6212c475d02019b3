"""The vpp-agent of one host: etcd watch -> cache -> work queue -> reconcile.

One code path for start-up, resync and steady state: every (re)connection to
VPP rebuilds the inventory from VPP's dumps and queues every port that is
desired, programmed or reported; the worker then reconciles each one. Events
from etcd and VPP only queue keys.

At start the worker does not wait for the whole of etcd's load: a port whose
binding has arrived (with its page) is programmed while etcd sends the rest.
Only what the absence of a binding decides (removing a port, collecting a
network or a security group) waits until the load is complete.

The host says it is alive (may take ports) only once a resync has read VPP and
the work it queued, with the whole load, is done; it withdraws that while VPP
is away. It advertises a physnet only while VPP has its uplink (see uplinks.py).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Hashable

from networking_vpp.agent.cache import PortCache, Rejection, SecGroupCache
from networking_vpp.agent.capacity import Capacity, read_max_map_count, read_mem_total
from networking_vpp.agent.inventory import Inventory
from networking_vpp.agent.queue import WorkQueue
from networking_vpp.agent.reconcile.networks import NetworkReconciler
from networking_vpp.agent.reconcile.ports import PortReconciler
from networking_vpp.agent.reconcile.secgroups import AclInventory, SecGroupReconciler
from networking_vpp.agent.report import Reporter
from networking_vpp.agent.sockdir import SocketDir, prepare
from networking_vpp.agent.taps import TapWatch
from networking_vpp.agent.uplinks import Uplinks
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import (
    RX_MODES,
    VppAdapter,
    VppApiError,
    VppConnectionError,
    VppUnreachable,
)
from networking_vpp.common import keys as k
from networking_vpp.common import model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.codec import KV
from networking_vpp.common.etcd.watcher import Event, PrefixWatcher

LOG = logging.getLogger(__name__)

RESYNC = ("resync", "")  # work-queue key: rebuild the inventory from VPP
LINKS = ("links", "")  # work-queue key: re-read the ports' link states
LOADED = ("loaded", "")  # work-queue key: the first load is in (the summary may go)
UPLINKS = ("uplinks", "events")  # work-queue key: look at interfaces VPP's events named
UPLINKS_ALL = ("uplinks", "all")  # work-queue key: look for every missing uplink
#: A key that failed this many times in a row is reported (its port's state in
#: error with VPP's reason); it is still retried, with the queue's backoff.
#: Not the first failure: a passing error (VPP busy) should not flap a port.
REPORT_AFTER_FAILURES = 3
#: ports reconciled together, their requests to VPP in flight at once: enough
#: to keep VPP busy through the round trips, few enough that a port's report
#: does not wait long for the others' (and the adapter is held meanwhile)
PORTS_IN_FLIGHT = 32
#: While VPP stays unreachable for the same reason, the warning is repeated
#: this often (seconds) rather than at every try, several a second.
UNREACHABLE_LOG_INTERVAL = 60.0


@dataclasses.dataclass
class AgentSettings:
    """What the agent needs to know about its host."""

    host: str
    physnets: dict[str, str]  # physnet -> VPP interface name
    prefix: str = k.DEFAULT_PREFIX
    alive_ttl: int = 10
    vpp_ping_interval: float = 2.0
    # Seconds between two looks for VPP while it is away (constant: see _watch_vpp)
    vpp_reconnect_interval: float = 0.2
    report_before_vm_connects: bool = False
    summary_interval: float = 1.0  # seconds between two summaries at the most
    link_refresh_interval: float = 60.0  # seconds between two re-reads of link states
    load_page_size: int = 1000  # bindings per etcd read of a full load
    # The vhost-user socket directory: every vhost-user binding must name the
    # port's socket in it (None: none configured, so no vhost-user port is taken).
    vhostuser_socket_dir: str | None = None
    # The agent makes the directory for QEMU (with the group and mode below);
    # off for rigs whose emulated VPP needs no real directory.
    make_vhostuser_socket_dir: bool = True
    vhostuser_socket_group: str | None = None
    vhostuser_socket_mode: int = 0o2770
    # The mode of vhost-user receive queues: polling, interrupt or adaptive
    # (see [vpp_agent] vhostuser_rx_mode)
    vhostuser_rx_mode: str = "adaptive"
    # Watch the kernel's link events for tap ports' devices (taps.py). Off here,
    # for rigs whose emulated VPP attaches to in-memory devices; the vpp-agent's
    # option ([vpp_agent] watch_tap_devices) is on by default.
    watch_tap_devices: bool = False
    # MAC learning in the bridge domains the agent makes: entries age out after
    # this many minutes (0: never), and at most this many are learnt (None:
    # VPP's default, 16 Mi): one port without port security cannot fill the
    # host's L2 table ([vpp_agent] bridge_mac_age, bridge_learn_limit).
    bridge_mac_age: int = 5
    bridge_learn_limit: int | None = 65536
    # What VPP can hold (capacity.py): its main heap ([vpp_agent]
    # vpp_main_heap_mb, as startup.conf sets it), and how the host's
    # vm.max_map_count and memory are read (tests inject small ones).
    vpp_main_heap_mb: int = 1024
    max_map_count: Callable[[], int] = read_max_map_count
    mem_total: Callable[[], int] = read_mem_total


class Agent:
    """Makes one VPP match the desired state in etcd for one host."""

    def __init__(self, settings: AgentSettings, etcd: EtcdClient, vpp: VppAdapter) -> None:
        self.settings = settings
        self.keys = k.KeySpace(settings.prefix)
        self.vpp = vpp
        self.cache = PortCache(self.keys, settings.host, settings.vhostuser_socket_dir)
        self.groups = SecGroupCache(self.keys)
        self.queue = WorkQueue()
        self.reporter = Reporter(
            etcd,
            self.keys,
            settings.host,
            settings.alive_ttl,
            more_coming=lambda: self.queue.ready() > 0,
        )
        #: the tags of this host's objects in VPP (its host id in each)
        self.tags = t.Tags.of(settings.host)
        self.inventory = Inventory(self.tags)
        self.taps = (
            TapWatch(
                lambda port_id: self.queue.add(("port", port_id)),
                lambda: self.queue.add_all(("port", p) for p in self.taps_ports()),
                name=f"tap-watch-{settings.host}",
            )
            if settings.watch_tap_devices
            else None
        )
        self.uplinks = Uplinks(settings.physnets)
        self.networks = NetworkReconciler(
            vpp,
            self.inventory,
            settings.physnets,
            settings.bridge_mac_age,
            settings.bridge_learn_limit,
        )
        self.secgroups = SecGroupReconciler(vpp, AclInventory(self.tags), self.groups)
        self.ports = PortReconciler(
            vpp,
            self.inventory,
            self.networks,
            self.secgroups,
            self.reporter,
            lambda port_id: self.queue.add(("port", port_id)),
            settings.report_before_vm_connects,
            self.taps,
            RX_MODES[settings.vhostuser_rx_mode],
            Capacity(settings.vpp_main_heap_mb, settings.max_map_count, settings.mem_total),
        )
        self._watcher = PrefixWatcher(
            etcd,
            self.keys.host_ports_prefix(settings.host),
            self._on_load,
            self._on_events,
            name=f"watch-ports-{settings.host}",
            on_page=self._on_page,
            page_size=settings.load_page_size,
        )
        self._global_watcher = PrefixWatcher(
            etcd,
            self.keys.global_prefix(),
            lambda snapshot, _rev: self.queue.add_all(self.groups.replace(snapshot)),
            lambda events: self.queue.add_all(self.groups.apply(events)),
            name=f"watch-global-{settings.host}",
        )
        self._stop = threading.Event()
        # Until the first full load is in, keys that depend on what etcd does
        # *not* hold wait here (see _wait_for_load).
        self._load_lock = threading.Lock()
        self._ports_loaded = False
        self._deferred: set[Hashable] = set()
        # True while the inventory reflects the connected VPP; port work waits
        # (is dropped: the next resync queues every key) until it does.
        self._synced = False
        self._summary_due = False
        self._summary_at = 0.0
        self._threads: list[threading.Thread] = []
        #: full resyncs done (first start included)
        self.resyncs = 0
        # Set while VPP is away: the VPP watch looks for it (_watch_vpp), and
        # queues the resync once it answers. _wake cuts the watch's pause short.
        self._vpp_away = threading.Event()
        self._wake = threading.Event()
        #: failed connections to VPP since it last answered; looks while it was away
        self.vpp_connect_failures = 0
        self.vpp_probes = 0
        self._unreachable_said: tuple[str, float] | None = None  # (what, when) last logged
        vpp.on_interface_event(self.on_vpp_event)

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        """Register with etcd, load desired state, then reconcile for ever (threads)."""
        # The inventory must be read from VPP before any port is reconciled
        # against it: the resync goes first, whatever the watchers queue.
        self.queue.add_first(RESYNC)
        if self.taps is not None:
            self.taps.start()  # before any port is looked at: no change goes unseen
        self.reporter.start()  # waits for etcd, unless interrupted
        if self._stop.is_set():
            return
        self._watcher.start()
        self._global_watcher.start()
        for target, name in ((self._work, "reconcile"), (self._watch_vpp, "vpp-ping")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def interrupt(self) -> None:
        """Make a :meth:`start` that waits for etcd return at once (safe in a
        signal handler: it only sets events); :meth:`stop` follows."""
        self._stop.set()
        self.reporter.interrupt()

    def stop(self) -> None:
        """Stop threads; the liveness lease is revoked."""
        self._stop.set()
        self._wake.set()
        self.queue.close()
        self._watcher.stop()
        self._global_watcher.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.taps is not None:
            self.taps.stop()
        self.reporter.stop()
        self.vpp.disconnect()

    def wait_converged(self, timeout: float) -> bool:
        """Wait until the first load is done, the work queue is idle and every
        report (the summary too) is in etcd."""
        deadline = time.monotonic() + timeout
        if not self._loaded(timeout):
            return False
        while time.monotonic() < deadline:
            if self.resyncs and self.queue.idle() and not self._summary_due:
                return self.reporter.wait_idle(max(0.0, deadline - time.monotonic()))
            time.sleep(0.01)
        return False

    def taps_ports(self) -> list[str]:
        """The tap ports whose devices are watched (every one, when events were lost)."""
        return self.taps.ports() if self.taps is not None else []

    def _loaded(self, timeout: float) -> bool:
        return self._watcher.wait_loaded(timeout) and self._global_watcher.wait_loaded(timeout)

    # --- inputs --------------------------------------------------------------------
    def _on_page(self, page: list[KV]) -> None:
        self.queue.add_all(("port", p) for p in sorted(self.cache.apply_page(page)))

    def _on_load(self, snapshot: dict[str, bytes], revision: int) -> None:
        changed = self.cache.replace(snapshot)
        LOG.info("Loaded %d ports at revision %d", len(snapshot), revision)
        self.queue.add_all(("port", p) for p in sorted(changed))
        with self._load_lock:
            self._ports_loaded = True
            deferred, self._deferred = self._deferred, set()
        self.queue.add_all([*deferred, LOADED])

    def _wait_for_load(self, key: Hashable) -> bool:
        """Whether ``key`` must wait for the first full load (it is kept, and
        queued again once the load is in).

        Until then a port without a binding may simply be on a page still to
        come: removing it, or collecting what only absent ports would use,
        would tear down what is wanted.
        """
        with self._load_lock:
            if self._ports_loaded:
                return False
            self._deferred.add(key)
            return True

    def _on_events(self, events: list[Event]) -> None:
        self.queue.add_all(("port", p) for p in self.cache.apply(events))

    def on_vpp_event(self, event: t.InterfaceEvent) -> None:
        """An interface event from VPP (on its thread): queue the port it concerns."""
        link_up = event.link_up and not event.deleted
        port_id = self.ports.on_link_change(event.sw_if_index, link_up)
        if port_id is not None:
            self.queue.add(("port", port_id))
        elif self.uplinks.on_event(event):
            self.queue.add(UPLINKS)

    # --- the worker -------------------------------------------------------------------
    def _work(self) -> None:
        # Security groups first (a port's filters are built from them); the
        # ports' own load streams in (see _wait_for_load).
        while not self._stop.is_set() and not self._global_watcher.wait_loaded(1.0):
            pass
        while not self._stop.is_set():
            key = self.queue.get(
                timeout=self.settings.summary_interval if self._summary_due else None
            )
            if key is None:
                if self._stop.is_set():
                    return
                self._maybe_publish_summary()
                continue
            keys = [key]
            if isinstance(key, tuple) and key[0] == "port" and self._synced:
                # Ports queued behind it go with it, their requests in flight together.
                keys += self.queue.take_more("port", PORTS_IN_FLIGHT - 1)
            ok = False
            failed: dict[Hashable, Exception] = {}
            unreachable: VppUnreachable | None = None
            try:
                if len(keys) > 1:
                    failed = self._reconcile_ports(keys)
                else:
                    self._reconcile(key)
                ok = True
            except VppUnreachable as exc:
                unreachable = exc  # logged below, without the exception appended again
                # Not retried by the queue, whose backoff grows to seconds: the
                # VPP watch looks for VPP every vpp_reconnect_interval and
                # queues the resync again once VPP answers.
                ok = True
                self._lost_vpp()
                self._await_vpp()
            except VppConnectionError as exc:
                LOG.warning("VPP connection lost (%s); reconnecting", exc)
                # Any key but the resync hands over to a resync, which queues it
                # again; a resync that lost VPP hands over to the VPP watch.
                ok = True
                self._lost_vpp()
                if key == RESYNC:
                    self._await_vpp()
            except Exception as exc:  # noqa: BLE001 - said below, and retried
                failed = {key: exc}
                ok = True
            finally:
                for each, why in failed.items():
                    self._failed(each, why)  # (counts this failure itself)
                for each in keys:
                    self.queue.done(each, ok and each not in failed)
            if unreachable is not None:
                # Outside the except block: oslo.log would append the exception
                # to a warning logged there.
                self._say_unreachable(unreachable)
            self._summary_due = True
            self._maybe_publish_summary()

    def _failed(self, key: Hashable, exc: Exception) -> None:
        """A key's reconcile failed (the queue retries it): logged; after a few
        failures in a row, a port's state says so, so that its failure is
        heard rather than only logged."""
        if isinstance(exc, VppApiError):
            LOG.warning("Reconcile %s failed: %s; will retry", key, exc)
            reason = str(exc)
        else:
            LOG.error("Reconcile %s failed; will retry", key, exc_info=exc)
            reason = f"{type(exc).__name__}: {exc}"
        assert isinstance(key, tuple)
        kind, ident = key
        if kind != "port" or self.queue.failures(key) + 1 < REPORT_AFTER_FAILURES:
            return
        desired = self.cache.get(ident)
        if desired is not None:  # (a removal that fails has no binding to report)
            self.reporter.port_error(ident, desired.binding_id, f"{reason} (retrying)")

    def _maybe_publish_summary(self) -> None:
        # The summary costs O(ports): written when no work is ready, and at most
        # once a summary_interval, so a busy agent's work stays O(1) a key. Keys
        # waiting for a retry do not hold it back: a key that keeps failing
        # would otherwise silence the summary that names it.
        if not self._summary_due or not self._ports_loaded or self.queue.ready():
            return
        if time.monotonic() - self._summary_at < self.settings.summary_interval:
            return
        self._summary_due = False
        self._summary_at = time.monotonic()
        self._publish_summary()

    def _publish_summary(self) -> None:
        statuses = self.reporter.statuses()
        desired = self.cache.port_ids()
        pending = sorted(p for p in desired if p not in statuses)
        self.reporter.set_summary(
            model.HostSummary(
                host=self.settings.host,
                desired=len(desired),
                programmed=len(self.inventory.ports),
                active=sum(1 for s in statuses.values() if s == "active"),
                errors=tuple(sorted(p for p, s in statuses.items() if s == "error")),
                pending=tuple(pending[:100]),
                rejected_values=self.cache.rejected_total + self.groups.rejected_total,
                resyncs=self.resyncs,
                failing=tuple(_key_name(key) for key in self.queue.failing()[:100]),
            )
        )

    def _reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        kind, ident = key
        if kind == "resync":
            self._resync()
        elif not self._synced:
            return  # the resync under way will queue this key again
        elif kind == "port":
            failed = self._reconcile_ports([key])
            if failed:
                raise failed[key]
        elif kind in ("sg", "net") and self._wait_for_load(key):
            return
        elif kind == "sg":
            self.secgroups.reconcile_group(ident, self.cache.group_in_use(ident))
        elif kind == "net":
            self.networks.collect(ident)
            self.queue.add_all(("port", p) for p in self.ports.unblocked())
        elif kind == "loaded":
            pass  # nothing to do but what follows every key: the summary
        elif kind == "ready":
            # Queued behind the resync's work; a newer resync's key supersedes it,
            # and the whole load must be in (it is queued again once it is).
            if ident == str(self.resyncs) and not self._wait_for_load(key):
                self.reporter.set_ready(True)
        elif kind == "uplinks":
            if key == UPLINKS_ALL:
                appeared = self.uplinks.refresh(self.vpp, self.inventory)
            else:
                appeared = self.uplinks.check(self.vpp, self.inventory)
            self._uplinks_changed(appeared)
        elif kind == "links":
            self.queue.add_all(("port", p) for p in self.ports.refresh_links())

    def _reconcile_ports(self, keys: list[Hashable]) -> dict[Hashable, Exception]:
        """Port keys, their requests to VPP in flight together
        (``PortReconciler.reconcile_many``); returns those that failed, with
        why. A lost connection to VPP is raised."""
        todo: list[tuple[str, model.PortBinding | None, Rejection | None]] = []
        failed: dict[Hashable, Exception] = {}
        for key in keys:
            assert isinstance(key, tuple)
            ident = key[1]
            desired = self.cache.get(ident)
            rejection = self.cache.rejection(ident)
            if desired is None and rejection is None and self._wait_for_load(key):
                continue
            if desired is not None and desired.tap is not None and rejection is None:
                # Attached, then killed before the tag: that interface is the port's.
                try:
                    self.inventory.adopt_untagged_tap(self.vpp, ident, desired.tap.ifname)
                except VppApiError as exc:
                    failed[key] = exc
                    continue
            todo.append((ident, desired, rejection))
        for ident, result in self.ports.reconcile_many(todo).items():
            if isinstance(result, Exception):
                failed[("port", ident)] = result
            else:
                self.queue.add_all(("sg", sg) for sg in result)
        # A port removed may have freed what another port waited for.
        self.queue.add_all(("port", p) for p in self.ports.unblocked())
        self.queue.add_all(("net", n) for n in self.ports.networks_to_collect())
        return failed

    def _resync(self) -> None:
        """(Re)connect to VPP, rebuild the inventory from its dumps, queue everything."""
        self._synced = False
        self.reporter.set_ready(False)
        if not self.vpp.connected:
            self.vpp.connect()
            if self.vpp_connect_failures:
                LOG.info(
                    "VPP answers at %s again (after %d failed connections)",
                    self.vpp.address,
                    self.vpp_connect_failures,
                )
            self.vpp_connect_failures = 0
            self._unreachable_said = None
        if not self.vpp.reclassifies_sessions():
            # Without it a removed rule or remote-group member leaves the flows
            # it allowed running (sessions outlive acl_add_replace). Set at
            # every resync: a restarted VPP has lost it.
            LOG.info("Turning on the ACL plugin's session reclassification")
            self.vpp.set_reclassify_sessions()
        inventory = Inventory.from_vpp(self.vpp, self.tags)
        self.inventory = self.networks.inv = self.ports.inv = inventory
        self.uplinks.from_inventory(inventory)
        self.reporter.set_physnets(self.uplinks.advertised())
        self.secgroups.inv = AclInventory.from_vpp(self.vpp, self.tags)
        self._say_foreign(inventory.foreign | self.secgroups.inv.foreign)
        self.ports.forget()
        self.ports.count_capacity(set(self.secgroups.inv.if_macip))
        self.ports.socket_dir_problem = self._prepare_socket_dir()
        # An older agent's objects get our host id first (strays too: simpler
        # than telling them apart, and they go next anyway).
        self.networks.adopt_legacy()
        self.secgroups.adopt_legacy()
        for stray in inventory.stray_ports:
            self.ports.remove_stray(stray)
        self.networks.collect_strays()
        self.secgroups.collect_strays()
        keys = (
            self.cache.port_ids()
            | self.cache.rejected_ports()
            | set(inventory.ports)
            | self.reporter.reported_ports()
        )
        self.queue.add_all(("port", p) for p in sorted(keys))
        self.queue.add_all(("net", n) for n in list(inventory.networks))
        ours = {
            tag[len(t.SECGROUP_TAG) :].rsplit(":", 1)[0]
            for tag in self.secgroups.inv.acls
            if tag.startswith(t.SECGROUP_TAG)
        }
        self.queue.add_all(("sg", sg) for sg in sorted(ours | self.cache.groups_in_use()))
        if inventory.ports:
            # An event that came while the dumps were being read went to the
            # old inventory: once the ports are done, their links are re-read.
            self.queue.add(LINKS)
        self.resyncs += 1
        self.queue.add(("ready", str(self.resyncs)))  # after all the resync queued
        self._synced = True
        LOG.info("Resync %d: %d ports to reconcile", self.resyncs, len(keys))

    def _say_foreign(self, foreign: set[str]) -> None:
        """Another host's agent uses this VPP too (a mistake): its objects are
        neither adopted nor removed, and the operator hears why."""
        if foreign:
            LOG.error(
                "VPP %s also holds objects of another networking-vpp host (id %s): "
                "not touching them; two agents on one VPP? (this host, %s, is id %s)",
                self.vpp.address,
                ", ".join(sorted(foreign)),
                self.settings.host,
                self.tags.host_id,
            )

    def _uplinks_changed(self, appeared: set[str]) -> None:
        """Advertise what VPP has; ports that waited for an uplink try again."""
        self.reporter.set_physnets(self.uplinks.advertised())
        if appeared:
            # Such a port was reported in error ("uplink ... is not in VPP").
            waiting = []
            for port_id in sorted(self.cache.port_ids()):
                desired = self.cache.get(port_id)
                if desired is not None and desired.physnet in appeared:
                    waiting.append(("port", port_id))
            self.queue.add_all(waiting)

    def _prepare_socket_dir(self) -> str | None:
        """Make the vhost-user socket directory; the problem (logged), or None."""
        s = self.settings
        if s.vhostuser_socket_dir is None or not s.make_vhostuser_socket_dir:
            return None
        problem = prepare(
            SocketDir(s.vhostuser_socket_dir, s.vhostuser_socket_group, s.vhostuser_socket_mode)
        )
        if problem:
            LOG.error("%s: vhost-user ports will be reported in error", problem)
        return problem

    def _lost_vpp(self) -> None:
        # Not a bind target while VPP is away, nor a physnet whose uplink it has.
        self.reporter.set_ready(False)
        self.reporter.set_physnets({})
        if self._synced:
            self._synced = False
            self.queue.add_first(RESYNC)

    def _await_vpp(self) -> None:
        """VPP did not answer a resync: the VPP watch looks for it from now on."""
        self.vpp_connect_failures += 1
        self._vpp_away.set()
        self._wake.set()

    def _say_unreachable(self, exc: VppUnreachable) -> None:
        """One warning when VPP cannot be reached, again when the reason changes
        or a while has passed: the agent tries several times a second."""
        said, now = str(exc), time.monotonic()
        last = self._unreachable_said
        if last is not None and last[0] == said and now - last[1] < UNREACHABLE_LOG_INTERVAL:
            LOG.debug("%s; retrying", said)
            return
        self._unreachable_said = (said, now)
        LOG.warning("%s; retrying", said)

    # --- VPP liveness ------------------------------------------------------------------
    def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, less if stopped or VPP was found away meanwhile."""
        self._wake.wait(seconds)
        # Cleared after the wait: a wake-up lost here costs nothing, since the
        # loop looks at _vpp_away before its next pause.
        self._wake.clear()

    def _watch_vpp(self) -> None:
        """Ping VPP while connected; while it is away, look for it often.

        A failed ping (VPP restarted or gone) hands over to a resync, which
        reconnects. If VPP does not answer, it is looked for every
        vpp_reconnect_interval: a constant, sub-second interval rather than a
        backoff, since a restarted VPP takes seconds to serve and every second
        waited after that is a second every port of the host is down. The
        look is the adapter's probe (VPP's socket accepting, in production);
        the first that finds VPP there queues the resync.
        """
        interval = self.settings.vpp_ping_interval
        links_due = time.monotonic() + self.settings.link_refresh_interval
        while not self._stop.is_set():
            if self._vpp_away.is_set():
                self._pause(self.settings.vpp_reconnect_interval)
                if self._stop.is_set():
                    return
                self.vpp_probes += 1
                if self.vpp.probe():
                    self._vpp_away.clear()
                    self.queue.add_first(RESYNC)
                continue
            self._pause(interval * random.uniform(0.8, 1.2))
            if self._stop.is_set() or self._vpp_away.is_set() or not self.vpp.connected:
                continue
            if time.monotonic() >= links_due:
                # Events keep link states current; this heals one that was lost.
                links_due = time.monotonic() + self.settings.link_refresh_interval
                self.queue.add(LINKS)
                if self.uplinks.missing():
                    self.queue.add(UPLINKS_ALL)  # heals an interface event lost
            try:
                self.vpp.ping()
            except VppConnectionError:
                LOG.warning("VPP stopped answering; reconnecting")
                self._lost_vpp()
            except VppApiError:
                LOG.debug("VPP ping returned an error", exc_info=True)


def _key_name(key: Hashable) -> str:
    """A work-queue key as the summary names it: ``port:<id>``, ``resync``."""
    if isinstance(key, tuple) and len(key) == 2:
        kind, ident = key
        return f"{kind}:{ident}" if ident else str(kind)
    return str(key)

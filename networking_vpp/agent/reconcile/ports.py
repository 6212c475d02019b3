"""reconcile(port): make one port's VPP objects match its desired binding.

Compares the desired binding (from the cache) with what the inventory says VPP
has, makes the smallest change, and reports the outcome. Restart, resync and
steady state all come through here; when nothing differs, nothing is called.

A port's work is a generator of *steps*: it sends a batch of requests and
yields where it must wait for their replies (a new interface's index; its
filters confirmed before admin-up; its name). :meth:`PortReconciler.reconcile`
runs one port's steps back to back; :meth:`PortReconciler.reconcile_many`
takes a step of each port in turn, so that while one port waits, the others'
requests are already on their way to VPP: a round trip is paid once for many
ports (a cold start's thousands) instead of three times for each.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from typing import TypeVar

from networking_vpp.agent.cache import Rejection
from networking_vpp.agent.capacity import Capacity, Cost
from networking_vpp.agent.inventory import Inventory, NetObj, PortObj
from networking_vpp.agent.reconcile.networks import (
    NetworkError,
    NetworkInUse,
    NetworkReconciler,
)
from networking_vpp.agent.reconcile.secgroups import SecGroupError, SecGroupReconciler
from networking_vpp.agent.report import Reporter
from networking_vpp.agent.taps import TapWatch, device_ifindex
from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.adapter import (
    RX_MODE_POLLING,
    Batch,
    VppAdapter,
    VppApiError,
    VppConnectionError,
)
from networking_vpp.common import model

LOG = logging.getLogger(__name__)

R = TypeVar("R")
#: a port's work: yields each batch it waits for; returns its result
Steps = Generator[Batch, None, R]


class PortReconciler:
    """Programs vhost-user and tap ports into their networks' bridge domains."""

    def __init__(
        self,
        vpp: VppAdapter,
        inventory: Inventory,
        networks: NetworkReconciler,
        secgroups: SecGroupReconciler,
        reporter: Reporter,
        requeue: Callable[[str], None],
        report_before_vm_connects: bool = False,
        taps: TapWatch | None = None,
        vhostuser_rx_mode: int = RX_MODE_POLLING,
        capacity: Capacity | None = None,
    ) -> None:
        self._vpp = vpp
        self.inv = inventory
        self._networks = networks
        self._secgroups = secgroups
        #: security groups applied to each port, to collect ACLs no port needs
        self.applied_groups: dict[str, frozenset[str]] = {}
        #: the binding each port was last fully converged to (by identity: the
        #: cache makes a new object for every change); cleared by a resync
        self.converged: dict[str, model.PortBinding] = {}
        self._reporter = reporter
        self._report_early = report_before_vm_connects
        self._requeue = requeue
        # Link events arrive on VPP's thread. Under this lock: an event's
        # change of a port's link and its check of _busy; the report's read
        # of the link; a read-back's write of it.
        self._links_lock = threading.Lock()
        self._busy: set[str] = set()  # the ports being reconciled
        self._stale: set[str] = set()  # of those, links changed after their report read them
        #: reconcile passes made (a port whose VM waits is programmed in one)
        self.passes = 0
        #: why the vhost-user socket directory is unusable (set at each resync), or None
        self.socket_dir_problem: str | None = None
        # Tap ports' kernel devices, watched (None: af_packet is tried, and
        # retried, whether or not the device is there)
        self._taps = taps
        # The mode a vhost-user port's receive queues are put in (RX_MODES)
        self._rx_mode = vhostuser_rx_mode
        # Why the current values of the ports being reconciled were refused:
        # their reports say so, whatever the last good value's outcome
        self._rejections: dict[str, Rejection] = {}
        # Networks the ports under way are joining, not yet members: a port
        # removed meanwhile (in the same reconcile_many) must not collect them
        self._joining: dict[str, str] = {}
        self._collect_later: set[str] = set()  # networks left for that reason
        # Ports in error because their uplink member carries another network:
        # port -> (that network, the member). Tried again once it is let go.
        self._blocked: dict[str, tuple[str, int]] = {}
        # What VPP can hold (None: not counted); ports refused for want of room,
        # tried again once a port has gone
        self._capacity = capacity
        self._no_room: set[str] = set()
        self._room_freed = False

    def reconcile(
        self,
        port_id: str,
        desired: model.PortBinding | None,
        rejection: Rejection | None = None,
    ) -> set[str]:
        """Converge one port; returns security groups it left (to collect).

        ``desired`` is the port's last good binding; ``rejection``, why its
        current value was refused. Such a port keeps (or gets back, after VPP
        restarted) what its last good binding programs, or, without one, what
        VPP holds for it, and is reported in error with the reason.

        VPP errors propagate so that the work queue retries the port.
        """
        steps = self._steps(port_id, desired, rejection)
        with self._vpp.exclusive():  # no other thread reads our replies meanwhile
            while True:
                try:
                    next(steps)
                except StopIteration as done:
                    return done.value

    def reconcile_many(
        self, ports: list[tuple[str, model.PortBinding | None, Rejection | None]]
    ) -> dict[str, set[str] | Exception]:
        """Converge several ports, their requests in flight together.

        Each port runs as :meth:`reconcile` would, one step at a time in turn:
        its requests go out behind those of the ports before it, and it waits
        only for its own replies. Returns, by port, the groups it left or what
        failed it (retried like a failed :meth:`reconcile`). A lost connection
        to VPP ends them all and is raised.
        """
        results: dict[str, set[str] | Exception] = {}
        running = [(port_id, self._steps(port_id, d, r)) for port_id, d, r in ports]
        with self._vpp.exclusive():
            try:
                while running:
                    waiting = []
                    for port_id, steps in running:
                        try:
                            next(steps)
                        except StopIteration as done:
                            results[port_id] = done.value
                        except VppConnectionError:
                            raise
                        except Exception as exc:  # noqa: BLE001 - the port's own failure
                            results[port_id] = exc
                        else:
                            waiting.append((port_id, steps))
                    running = waiting
            finally:
                for _, steps in running:
                    steps.close()  # (after a lost connection) their finally blocks run
        return results

    def _steps(
        self, port_id: str, desired: model.PortBinding | None, rejection: Rejection | None
    ) -> Steps[set[str]]:
        self.passes += 1
        with self._links_lock:
            self._busy.add(port_id)
            self._stale.discard(port_id)
        if rejection is not None:
            self._rejections[port_id] = rejection
        try:
            if desired is None and rejection is not None:
                # Nothing good known (a restart since, or never): nothing to
                # converge to, and nothing in VPP is removed for it.
                self._say_rejected(port_id)
                return set()
            return (yield from self._reconcile(port_id, desired))
        finally:
            self._rejections.pop(port_id, None)
            self._joining.pop(port_id, None)
            with self._links_lock:
                self._busy.discard(port_id)
                stale = port_id in self._stale
                self._stale.discard(port_id)
            if stale:
                self._requeue(port_id)

    def _say_rejected(self, port_id: str) -> bool:
        """Report the port's refused value instead of its outcome, if it has one."""
        rejection = self._rejections.get(port_id)
        if rejection is None:
            return False
        self._reporter.port_error(port_id, rejection.binding_id, rejection.reason)
        return True

    def _reconcile(self, port_id: str, desired: model.PortBinding | None) -> Steps[set[str]]:
        self._blocked.pop(port_id, None)
        self._no_room.discard(port_id)
        actual = self.inv.ports.get(port_id)
        before = self.applied_groups.get(port_id)
        if before is None:
            # Not reconciled since the last resync (which forgets applied_groups):
            # the groups its adopted interface holds, to be collected once it lets
            # them go (a port deleted while the agent was down, say).
            before = frozenset(
                self._secgroups.groups_on(actual.sw_if_index) if actual is not None else ()
            )
        if self._taps is not None:
            actual, missing = self._tap_device(port_id, desired, actual)
            if missing is not None:
                assert desired is not None
                if not self._say_rejected(port_id):
                    self._reporter.port_waiting(port_id, desired.binding_id, missing)
                return set(before)
        if actual is not None and desired is not None and self.converged.get(port_id) is desired:
            # Nothing asked changed since we converged it (a link event, say):
            # only the report may differ.
            net = self.inv.networks.get(desired.network_id)
            if net is not None:
                yield from self._set_rx_mode(actual)  # its VM may just have connected
                self._report(actual, desired, net)
                return set()
        self.converged.pop(port_id, None)
        if desired is None:
            if actual is not None:
                self._remove(actual)
            else:
                # A MACIP ACL made with a create that then failed
                self._secgroups.port_gone(port_id)
            self._release(port_id)  # counted, though its create failed
            self._reporter.port_gone(port_id)
            return set(before)
        if desired.vhostuser is not None and self.socket_dir_problem:
            # QEMU cannot make or reach its socket: an error Nova and the
            # operator see, rather than a port waiting for a VM that cannot
            # come. Whatever is programmed stays (it may yet serve).
            if not self._say_rejected(port_id):
                self._reporter.port_error(port_id, desired.binding_id, self.socket_dir_problem)
            return set()
        if actual is None and self._no_room_for(desired):
            return set(before)  # nothing made in VPP for it
        try:
            with self._vpp.batch():  # a new network's calls: a few round trips, not one each
                net = self._networks.ensure(desired)
            self._joining[port_id] = net.network_id
            if actual is not None and not _same_attachment(actual, desired):
                LOG.info("Port %s: attachment changed, recreating its interface", port_id)
                self._remove(actual)
                actual = None
            if actual is None:
                actual = yield from self._create(desired)
            yield from self._converge(actual, desired, net)
            yield from self._set_rx_mode(actual)
        except (NetworkError, SecGroupError) as exc:
            # Not half-programmed: whatever an earlier binding left goes.
            actual = self.inv.ports.get(port_id)
            if actual is not None:
                self._remove(actual)
            self._release(port_id)
            LOG.error("Port %s cannot be bound here: %s", port_id, exc)
            if not self._say_rejected(port_id):
                self._reporter.port_error(port_id, desired.binding_id, str(exc))
            if isinstance(exc, NetworkInUse):
                self._blocked[port_id] = (exc.owner, exc.member)
            return set(before)
        now = frozenset(desired.security_groups if desired.port_security_enabled else ())
        self.applied_groups[port_id] = now
        self.converged[port_id] = desired
        self._report(actual, desired, net)
        return set(before - now)

    def _no_room_for(self, desired: model.PortBinding) -> bool:
        """Whether VPP has no room for a new port (then reported in error, with
        the limit and its fix, and tried again once a port has gone)."""
        if self._capacity is None:
            return False
        kind = "vhostuser" if desired.vhostuser is not None else "tap"
        reason = self._capacity.check(desired.port_id, Cost.of(kind, desired.port_security_enabled))
        if reason is None:
            return False
        LOG.error("Port %s not programmed: %s", desired.port_id, reason)
        if not self._say_rejected(desired.port_id):
            self._reporter.port_error(desired.port_id, desired.binding_id, reason)
        self._no_room.add(desired.port_id)
        return True

    def _release(self, port_id: str) -> None:
        """The port holds nothing in VPP any more: ports waiting for room may fit."""
        if self._capacity is not None and self._capacity.release(port_id):
            self._room_freed = True

    def count_capacity(self, secured: set[int]) -> None:
        """Count what the ports VPP holds cost (at a resync; ``secured``: the
        interfaces with a MACIP ACL)."""
        if self._capacity is None:
            return
        self._capacity.reset(
            {p.port_id: Cost.of(p.kind, p.sw_if_index in secured) for p in self.inv.ports.values()}
        )

    def _create(self, desired: model.PortBinding) -> Steps[PortObj]:
        tag = self.inv.tags.mark(t.PORT_TAG + desired.port_id)
        if desired.vhostuser is not None:
            is_server = desired.vhostuser.mode == "server"
            endpoint = desired.vhostuser.socket
            made: list[int] = []
            with self._vpp.batch(wait=False) as batch:
                # The MACIP ACL needs no interface: in flight with the create.
                self._secgroups.prepare_port(desired)
                self._vpp.add_vhost_user(endpoint, is_server, desired.mac_address, tag, made.append)
            yield batch
            self._vpp.settle(batch)
            idx = made[0]
            # VPP made it with the port's MAC, admin down (so link down) and a
            # default MTU that _converge sets anyway. Its name is read back once
            # the port is up (_read_back), together with the link state then.
            port = PortObj(
                desired.port_id, idx, "", "vhostuser", endpoint, is_server, desired.mac_address
            )
            self.inv.add_port(port)  # from here on, VPP's events about it count
        else:
            assert desired.tap is not None  # model.PortBinding.check() guarantees it
            endpoint = desired.tap.ifname
            # Looked up before: should the device be made again meanwhile, the
            # mismatch shows at the next look (its event queues one).
            host_ifindex = device_ifindex(endpoint) if self._taps is not None else None
            with self._vpp.batch():
                self._secgroups.prepare_port(desired)
                idx = self._vpp.create_af_packet(endpoint, tag)
                if self._taps is not None:
                    self._taps.attached(desired.port_id, host_ifindex)
                port = PortObj(desired.port_id, idx, "", "tap", endpoint, False)
                self.inv.add_port(port)
                # (behind the tag the create sets) af_packet picks its MAC; the
                # MTU is the host's
                self._read_back(port)
        LOG.info("Port %s: created %s interface %d", desired.port_id, port.kind, idx)
        return port

    def _tap_device(
        self, port_id: str, desired: model.PortBinding | None, actual: PortObj | None
    ) -> tuple[PortObj | None, str | None]:
        """Whether a tap port's kernel device is there to attach to.

        Returns the port's interface, if it may stay, and why the port waits
        (None: it need not). VPP keeps the af_packet interface of a device that
        went link-up and black-holed, also once a device of the same name is
        made again (another ifindex): the agent deletes it, and attaches to the
        new device afresh.
        """
        assert self._taps is not None
        if desired is None or desired.tap is None:
            self._taps.forget(port_id)
            return actual, None
        ifname = desired.tap.ifname
        # Watched before the look: a device that appears after it sends an event.
        self._taps.watch(port_id, ifname)
        ifindex = device_ifindex(ifname)
        if actual is not None and actual.kind == "tap":
            attached_to = self._taps.attached_to(port_id)
            if ifindex is None or attached_to not in (None, ifindex):
                what = "gone" if ifindex is None else "made again"
                LOG.info("Port %s: tap device %s %s; detaching VPP from it", port_id, ifname, what)
                self._remove(actual)
                self.converged.pop(port_id, None)
                actual = None
            elif attached_to is None:
                # Found in VPP at start-up (af_packet's dump does not say which
                # device): taken to be the one there now.
                self._taps.attached(port_id, ifindex)
        if ifindex is None:
            self._taps.attached(port_id, None)
            return actual, f"tap device {ifname} not present"
        return actual, None

    def _converge(self, port: PortObj, desired: model.PortBinding, net: NetObj) -> Steps[None]:
        """Set what differs: the calls that need no other's reply in one batch
        (each recorded in the inventory once VPP says it is done), then
        admin-up once every filter's reply is in, with the read-back."""
        idx = port.sw_if_index
        old = self.inv.bd_of.get(idx)
        if old is not None and old != net.bd_id:
            # Moving between networks (rare): the old one may go once it has left.
            self._vpp.set_bridge(idx, net.bd_id)
            self.inv.join(idx, net.bd_id)
            self._collect_bd(old)
        with self._vpp.batch(wait=False) as batch:
            if port.mtu != desired.mtu:
                self._vpp.set_mtu(idx, desired.mtu, then=_setter(port, "mtu", desired.mtu))
            if old is None:
                self._vpp.set_bridge(idx, net.bd_id, then=lambda: self.inv.join(idx, net.bd_id))
            # Filters before admin-up: no packet may pass an unfiltered port.
            self._secgroups.apply_port(idx, desired)
            self._networks.isolation.port(idx)  # its VM's tags: dropped
        yield batch
        self._vpp.settle(batch)
        if port.admin_up == desired.admin_state_up and port.name:
            return
        with self._vpp.batch(wait=False) as batch:
            if port.admin_up != desired.admin_state_up:
                up = desired.admin_state_up
                self._vpp.set_admin_up(idx, up, then=_setter(port, "admin_up", up))
            if not port.name:
                self._read_back(port)
        yield batch
        self._vpp.settle(batch)

    def _set_rx_mode(self, port: PortObj) -> Steps[None]:
        """Put a vhost-user port's receive queues in the configured mode.

        VPP has the queue only once the VM has started it (its link is up),
        keeps it and its mode while the VM comes and goes, and makes it in
        polling mode: before that, the call would succeed and keep nothing.
        Not fatal: the port passes traffic in any mode, so a refusal (the VM
        went meanwhile, so no interrupts) is logged, and tried again at the
        port's next reconcile (its next link event, say).
        """
        if port.kind != "vhostuser" or port.rx_mode == self._rx_mode or not port.link_up:
            return
        with self._vpp.batch(wait=False) as batch:
            self._vpp.set_rx_mode(port.sw_if_index, self._rx_mode)
        yield batch
        try:
            self._vpp.settle(batch)
        except VppApiError as exc:
            LOG.warning("Port %s: receive queues left as they are: %s", port.port_id, exc)
            return
        port.rx_mode = self._rx_mode

    def _read_back(self, port: PortObj) -> None:
        """Learn what VPP chose (the name; a tap's MAC and MTU) and the link now.

        A vhost-user port is read after admin-up: a VM waiting on the socket
        has attached by then, and knowing it spares a second pass when VPP's
        event says the same.
        """
        seq = port.link_seq
        if port.kind == "vhostuser":
            # In a batch, read once VPP answers (the port's name, for its report).
            def got(brief: tuple[str, bool] | None) -> None:
                if brief is not None:
                    port.name, link_up = brief
                    self._set_link(port, seq, link_up)

            self._vpp.read_name_and_link(port.sw_if_index, got)
            return
        itf = self._vpp.get_interface(port.sw_if_index)
        if itf is None:
            return
        port.name, port.mac_address, port.mtu = itf.name, itf.mac_address, itf.mtu
        port.admin_up = itf.admin_up
        self._set_link(port, seq, itf.link_up)

    def _set_link(self, port: PortObj, seq: int, link_up: bool) -> None:
        """Record a link state read when the port's event count was ``seq``."""
        with self._links_lock:
            # An event applied since the call began wins: each link change has
            # an event, in order, so whatever VPP did after it is still to come.
            if port.link_seq == seq:
                port.link_up = link_up

    def _report(self, port: PortObj, desired: model.PortBinding, net: NetObj) -> None:
        if self._say_rejected(desired.port_id):
            return
        with self._links_lock:
            link_up = port.link_up
            self._stale.discard(desired.port_id)
        uplink = self._networks.uplink_for(desired)
        programmed = model.Programmed(
            interface=port.name,
            sw_if_index=port.sw_if_index,
            bridge_domain=net.bd_id,
            uplink=uplink.name,
            vlan=desired.segmentation_id,
            mtu=port.mtu,
            mac_address=port.mac_address,
        )
        # Nova must hear "plugged" only once the VM can pass traffic; until then,
        # and while the port is admin down, the port is down and the report says
        # why (the server sets the port DOWN, and ACTIVE again when it is up).
        if not desired.admin_state_up:
            down = "admin down"
        elif port.kind == "vhostuser" and not link_up and not self._report_early:
            down = "VM not connected"
        else:
            self._reporter.port_active(desired.port_id, desired.binding_id, programmed)
            return
        self._reporter.port_down(desired.port_id, desired.binding_id, down, programmed)

    def _remove(self, port: PortObj) -> None:
        bd_id = self.inv.bd_of.get(port.sw_if_index)
        if bd_id is not None:
            self._vpp.unset_bridge(port.sw_if_index)
        if port.kind == "vhostuser":
            self._vpp.delete_vhost_user(port.sw_if_index)
        else:
            self._vpp.delete_af_packet(port.endpoint)
        self.inv.remove_port(port.port_id)
        self._release(port.port_id)
        self._secgroups.interface_deleted(port.sw_if_index, port.port_id)
        self.applied_groups.pop(port.port_id, None)
        LOG.info("Port %s: removed %s", port.port_id, port.name)
        if bd_id is not None:
            self._collect_bd(bd_id)

    def _collect_bd(self, bd_id: int) -> None:
        for net in list(self.inv.networks.values()):
            if net.bd_id != bd_id:
                continue
            if net.network_id in self._joining.values():
                self._collect_later.add(net.network_id)  # looked at again after
            else:
                self._networks.collect(net.network_id)

    def networks_to_collect(self) -> list[str]:
        """Networks whose collection waited for ports that were joining them
        (each returned once): collected if those ports did not stay."""
        later, self._collect_later = sorted(self._collect_later), set()
        return later

    def unblocked(self) -> list[str]:
        """Ports that waited for an uplink member another network held, now free
        (that network is gone, or moved off it); each is returned once.

        Ports refused for want of room in VPP come back too once a port has
        gone (each is looked at again: those that still do not fit wait on).

        Cheap when nothing waits, which is nearly always: called after every
        port and network key.
        """
        free = []
        if self._room_freed:
            self._room_freed = False
            free, self._no_room = sorted(self._no_room), set()
        if not self._blocked:
            return free
        for port_id, (owner, member) in list(self._blocked.items()):
            net = self.inv.networks.get(owner)
            if net is None or net.uplink != member:
                del self._blocked[port_id]
                free.append(port_id)
        return free

    def remove_stray(self, port: PortObj) -> None:
        """Delete an interface of ours that no port accounts for (a duplicate)."""
        if port.kind == "vhostuser":
            self._vpp.delete_vhost_user(port.sw_if_index)
        else:
            self._vpp.delete_af_packet(port.endpoint)

    def on_link_change(self, sw_if_index: int, link_up: bool) -> str | None:
        """Record a link change from VPP's events (VPP's event thread); returns
        the port to reconcile, or None when no port's report depends on it."""
        with self._links_lock:
            port_id = self.inv.port_by_index.get(sw_if_index)
            port = self.inv.ports.get(port_id) if port_id is not None else None
            if port is None:
                return None  # not a port; or one being created, read back later
            port.link_seq += 1
            if port.link_up == link_up:
                return None  # (an admin change, say): the report stays as it is
            port.link_up = link_up
            if port_id in self._busy:
                # Caused by the reconcile under way (admin-up, say), whose report
                # is still to come: a second pass only if the report has read it.
                self._stale.add(port_id)
                return None
            return port_id

    def refresh_links(self) -> list[str]:
        """Re-read every port's link state; returns the ports whose report it changes.

        VPP's events keep link states current; this heals one that was lost
        (one that came while a resync was reading the dumps, say). A port an
        event reached since the dump was asked for keeps what the event said.
        """
        seqs = {port_id: port.link_seq for port_id, port in self.inv.ports.items()}
        links = self._vpp.link_states()
        changed = []
        with self._links_lock:
            for port_id, seq in seqs.items():
                port = self.inv.ports.get(port_id)
                if port is None or port.link_seq != seq:
                    continue
                link_up = links.get(port.sw_if_index)
                if link_up is not None and link_up != port.link_up:
                    LOG.info("Port %s: link %s (an event was lost)", port_id, link_up)
                    port.link_up = link_up
                    changed.append(port_id)
        return changed

    def forget(self) -> None:
        """Forget what was learnt since the last resync (which reads VPP afresh)."""
        self.applied_groups = {}
        self.converged = {}
        self._blocked = {}  # the resync queues every port anyway
        self._no_room = set()


def _setter(obj: object, name: str, value: object) -> Callable[[], None]:
    """Record ``obj.name = value`` (once VPP says the change is done)."""
    return lambda: setattr(obj, name, value)


def _same_attachment(port: PortObj, desired: model.PortBinding) -> bool:
    """Whether the existing interface can serve the binding as it is."""
    if desired.vhostuser is not None:
        return (
            port.kind == "vhostuser"
            and port.endpoint == desired.vhostuser.socket
            and port.is_server == (desired.vhostuser.mode == "server")
            and port.mac_address == desired.mac_address
        )
    return port.kind == "tap" and desired.tap is not None and port.endpoint == desired.tap.ifname

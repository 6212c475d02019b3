"""The ACL plugin's state: ACLs, MACIP ACLs, interface bindings and sessions.

A model of the plugin's ``acl_main_t`` (``src/plugins/acl/acl.c``), one per
life of the VPP process (a restart wipes it with the rest of the state):

* ACLs and MACIP ACLs live in two pools (vppinfra pools: a freed index is the
  next one handed out). Rules are kept as the API gave them (as vpp_papi's
  serializer unpacked them), which is also what the dumps return; the
  dataplane compiles them on first use (``compiled``), and a replace drops the
  compiled form so the new rules apply at once wherever the ACL is applied.
* Each interface has an ordered input list and an ordered output list (VPP's
  ``input_acl_vec_by_sw_if_index``/``output_...``) and the reverse maps, ACL
  -> interfaces using it (``..._sw_if_index_vec_by_acl``), that ``acl_del``
  checks. ``set_list`` is ``acl_interface_set_inout_acl_list``.
* MACIP: at most one MACIP ACL per interface, in VPP's vector indexed by
  sw_if_index that grows and never shrinks (``macip_acl_interface_get`` shows
  it, ~0 for "none").
* Sessions of permit+reflect rules (``fa_node.h``/``session_inlines.h``).
* Session reclassification (``reclassify_sessions``, off by default; on by
  ``set acl-plugin reclassify-sessions 1`` or startup.conf's ``acl-plugin {
  reclassify sessions 1 }``): each interface has a policy epoch per direction
  (15 bits and the direction as bit 15, ``increment_policy_epoch``), bumped
  when its ACL list is set and when an ACL it applies is replaced; a session
  remembers the epoch it was made in, and a packet that hits it in the
  direction that made it, once the epoch moved on, deletes it and goes
  through the ACLs again (``stale_session_deleted``). With reclassification
  on, a change of an interface's set of ACLs no longer clears its sessions.
* Ethertype whitelists of the non-IP path, per interface and direction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from networking_vpp.testing.vpp import errors as e

if TYPE_CHECKING:
    from networking_vpp.testing.vpp.state import IndexPool

NO_INDEX = 0xFFFFFFFF
EPOCH_MASK = 0x7FFF  # FA_POLICY_EPOCH_MASK
EPOCH_IS_INPUT = 0x8000  # FA_POLICY_EPOCH_IS_INPUT

#: (IP version, src, dst, port[0], port[1], proto, is_input, sw_if_index): a
#: session table key as VPP's 5-tuple key has it. For TCP/UDP the ports are the
#: packet's; for ICMP they are type and code; for other protocols 0, 0.
FlowKey = tuple[int, int, int, int, int, int, bool, int]


@dataclasses.dataclass(eq=False, slots=True)
class AclList:
    """One ACL: its rules (acl_rule_t fields as normalised) and tag."""

    rules: list[dict[str, Any]]
    tag: str
    compiled: Any = None  # the dataplane's matcher, built on first use


@dataclasses.dataclass(eq=False, slots=True)
class MacipAcl:
    """One MACIP ACL: its rules (macip_acl_rule_t fields as normalised) and tag."""

    rules: list[dict[str, Any]]
    tag: str
    compiled: Any = None  # the dataplane's classifier tables, built on first use


@dataclasses.dataclass(eq=False, slots=True)
class Session:
    """A permit+reflect session, created by a packet on ``sw_if_index``.

    ``key`` matches more packets of the flow in the direction that created it
    (``is_input``); ``reverse`` matches the replies in the other direction of
    the same interface (None for ICMP messages that have no reply type).
    """

    sw_if_index: int
    is_input: bool
    key: FlowKey
    reverse: FlowKey | None
    epoch: int = 0  # the interface's policy epoch (that direction's) when it was made


class Sessions:
    """The session table: both keys of every session, and sessions per interface."""

    def __init__(self) -> None:
        self.by_key: dict[FlowKey, Session] = {}
        self.by_itf: dict[int, dict[Session, None]] = {}

    def __len__(self) -> int:
        return sum(len(s) for s in self.by_itf.values())

    def __iter__(self) -> Iterator[Session]:
        for sessions in self.by_itf.values():
            yield from sessions

    def add(
        self,
        sw_if_index: int,
        is_input: bool,
        key: FlowKey,
        reverse: FlowKey | None,
        epoch: int = 0,
    ) -> None:
        """acl_fa_add_session: the key and, if valid, the reverse key."""
        sess = Session(sw_if_index, is_input, key, reverse, epoch)
        for k in (key, reverse):
            if k is not None:
                old = self.by_key.get(k)
                if old is not None:  # a bihash add overwrites: the old entry is lost
                    self._forget(old)
                self.by_key[k] = sess
        self.by_itf.setdefault(sw_if_index, {})[sess] = None

    def delete(self, sess: Session) -> None:
        """acl_fa_two_stage_delete_session: both keys go."""
        self._forget(sess)

    def _forget(self, sess: Session) -> None:
        for k in (sess.key, sess.reverse):
            if k is not None and self.by_key.get(k) is sess:
                del self.by_key[k]
        itf = self.by_itf.get(sess.sw_if_index)
        if itf is not None:
            itf.pop(sess, None)
            if not itf:
                del self.by_itf[sess.sw_if_index]

    def clear_interface(self, sw_if_index: int) -> int:
        """ACL_FA_CLEANER_DELETE_BY_SW_IF_INDEX: every session of the interface."""
        sessions = self.by_itf.pop(sw_if_index, {})
        for sess in sessions:
            for k in (sess.key, sess.reverse):
                if k is not None and self.by_key.get(k) is sess:
                    del self.by_key[k]
        return len(sessions)

    def clear(self) -> int:
        """Forget every session (a test hook; VPP would let them time out)."""
        n = len(self)
        self.by_key.clear()
        self.by_itf.clear()
        return n


class AclState:
    """The ACL plugin's tables (all under the emulator's lock)."""

    def __init__(self, acl_pool: IndexPool, macip_pool: IndexPool) -> None:
        self.acls: dict[int, AclList] = {}
        self.acl_pool = acl_pool
        #: sw_if_index -> ACL indices, by direction (index 1: input, 0: output)
        self.lists: tuple[dict[int, list[int]], dict[int, list[int]]] = ({}, {})
        #: ACL index -> sw_if_indices applying it, by direction (as ``lists``)
        self.users: tuple[dict[int, list[int]], dict[int, list[int]]] = ({}, {})
        self.macips: dict[int, MacipAcl] = {}
        self.macip_pool = macip_pool
        #: VPP's macip_acl_by_sw_if_index: grows to the highest index used, ~0 = none
        self.macip_by_sw_if_index: list[int] = []
        self.macip_applied = 0  # interfaces with a MACIP ACL (a fast "none" test)
        self.sessions = Sessions()
        #: sw_if_index -> (input, output) ethertype whitelists. Deleting the
        #: interface keeps them (acl_sw_interface_add_del leaves them): an index
        #: reused later has them again.
        self.whitelists: dict[int, tuple[list[int], list[int]]] = {}
        self.reclassify = False  # am->reclassify_sessions
        #: sw_if_index -> policy epoch, by direction (as ``lists``); absent: the
        #: initial epoch (0, with the input bit for input)
        self.epochs: tuple[dict[int, int], dict[int, int]] = ({}, {})

    # --- policy epochs (session reclassification) ---------------------------------
    def epoch(self, sw_if_index: int, is_input: bool) -> int:
        """get_current_policy_epoch."""
        return self.epochs[is_input].get(sw_if_index, EPOCH_IS_INPUT if is_input else 0)

    def _new_epoch(self, sw_if_index: int, is_input: bool) -> None:
        """increment_policy_epoch."""
        epoch = (self.epoch(sw_if_index, is_input) + 1) & EPOCH_MASK
        self.epochs[is_input][sw_if_index] = epoch | (EPOCH_IS_INPUT if is_input else 0)

    def acl_replaced(self, acl_index: int) -> None:
        """policy_notify_acl_change: a replaced ACL is a new policy where it applies."""
        if self.reclassify:
            for is_input in (False, True):
                for sw_if_index in self.users[is_input].get(acl_index, ()):
                    self._new_epoch(sw_if_index, is_input)

    def stale(self, sess: Session, sw_if_index: int, is_input: bool) -> bool:
        """stale_session_deleted's test: only in the direction that made the
        session (the epoch's input bit), and only with reclassification on."""
        if not self.reclassify:
            return False
        current = self.epoch(sw_if_index, is_input)
        return (current ^ sess.epoch) & EPOCH_IS_INPUT == 0 and current != sess.epoch

    def whitelist(self, sw_if_index: int, is_input: bool) -> list[int] | None:
        """The whitelist the non-IP path applies (None: it is not on).

        ``acl_interface_{in,out}_enable_disable`` hook acl-plugin-*-nonip-l2 in
        only for an interface with ACLs in that direction and a whitelist.
        """
        lists = self.whitelists.get(sw_if_index)
        if lists is None or sw_if_index not in self.lists[is_input]:
            return None
        return lists[0 if is_input else 1] or None

    # --- ACLs on interfaces -------------------------------------------------------
    def in_use(self, acl_index: int) -> int:
        """0, or the error acl_del returns for an ACL still applied somewhere."""
        if self.users[1].get(acl_index):
            return e.ACL_IN_USE_INBOUND
        if self.users[0].get(acl_index):
            return e.ACL_IN_USE_OUTBOUND
        return 0

    def set_list(self, sw_if_index: int, is_input: bool, acls: list[int]) -> int:
        """acl_interface_set_inout_acl_list: 0, NO_SUCH_ENTRY or ENTRY_ALREADY_EXISTS.

        A change of the *set* of ACLs (not of their order) clears the
        interface's sessions, as VPP does with session reclassification off
        (its default); with it on, any setting starts a new policy epoch.
        """
        table, users = self.lists[is_input], self.users[is_input]
        if not acls and sw_if_index not in table:
            return 0  # no ACLs, as before (a new port's call): nothing changes
        seen: set[int] = set()
        for index in acls:
            if index not in self.acls:
                return e.NO_SUCH_ENTRY
            if index in seen:
                return e.ENTRY_ALREADY_EXISTS
            seen.add(index)
        old = table.get(sw_if_index, ())
        changed = seen.symmetric_difference(old)
        for index in changed:
            if index in seen:
                users.setdefault(index, []).append(sw_if_index)
            else:
                where = users[index]
                where.remove(sw_if_index)
                if not where:
                    del users[index]
        if acls:
            table[sw_if_index] = list(acls)
        else:
            table.pop(sw_if_index, None)
        if self.reclassify:
            self._new_epoch(sw_if_index, is_input)
        elif changed:
            self.sessions.clear_interface(sw_if_index)
        return 0

    # --- MACIP on interfaces --------------------------------------------------------
    def macip_of(self, sw_if_index: int) -> int:
        """The MACIP ACL applied to the interface, or ~0."""
        vec = self.macip_by_sw_if_index
        return vec[sw_if_index] if sw_if_index < len(vec) else NO_INDEX

    def macip_apply(self, sw_if_index: int, macip_index: int) -> None:
        """macip_acl_interface_add_acl (the index is known to exist): replaces any."""
        vec = self.macip_by_sw_if_index
        if sw_if_index >= len(vec):
            vec.extend([NO_INDEX] * (sw_if_index + 1 - len(vec)))
        if vec[sw_if_index] == NO_INDEX:
            self.macip_applied += 1
        vec[sw_if_index] = macip_index

    def macip_unapply(self, sw_if_index: int) -> int:
        """macip_acl_interface_del_acl: 0, or NO_SUCH_ENTRY if none is applied."""
        if self.macip_of(sw_if_index) == NO_INDEX:
            return e.NO_SUCH_ENTRY
        self.macip_by_sw_if_index[sw_if_index] = NO_INDEX
        self.macip_applied -= 1
        return 0

    # --- the interface went away --------------------------------------------------
    def interface_deleted(self, sw_if_index: int) -> None:
        """acl_sw_interface_add_del(is_add=0): sessions, MACIP and ACL lists go."""
        self.sessions.clear_interface(sw_if_index)
        self.macip_unapply(sw_if_index)
        self.set_list(sw_if_index, False, [])
        self.set_list(sw_if_index, True, [])

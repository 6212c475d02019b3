"""l2-learn and the MAC ager: learning is bounded per bridge domain.

A model of ``src/vnet/l2/l2_learn.c`` (l2learn_process) and of the ager in
``l2_fib.c`` (l2fib_scan):

* An entry's timestamp is the minute it was learnt or last refreshed, as a u8
  (``(u8) (now / 60)``); a frame from a MAC already learnt on the same
  interface refreshes it once the minute moved on (when the bridge domain ages),
  unless the bridge domain is above its learn limit.
* A new MAC is learnt only while the bridge domain has fewer than
  ``learn_limit`` entries (``bd_config->learn_count``; new bridge domains get
  ``bd_default_learn_limit``, L2LEARN_DEFAULT_LIMIT = 256 Ki x 64); at the limit
  it is not learnt, and the frame is forwarded all the same (counted as
  L2LEARN_ERROR_LIMIT). VPP's global limit (the same number) is not modelled.
* A MAC moving to another interface is re-pointed whatever the counts.
* The ager removes the entries of a bridge domain with ``mac_age`` (minutes,
  0: never) whose timestamp is ``mac_age`` or more minutes old. VPP's scanner
  wakes up on its own; here it runs lazily, before each learn, whenever the
  minute changed since its last run (``State.clock`` gives the time: tests set
  it to move time forward).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from networking_vpp.testing.vpp.state import BridgeDomain, State

#: L2LEARN_DEFAULT_LIMIT (l2_learn.h): L2FIB_NUM_BUCKETS * 64
DEFAULT_LEARN_LIMIT = 256 * 1024 * 64


def minute(state: State) -> int:
    """The ager's clock: whole minutes as a u8, as l2fib entries carry them."""
    return int(state.clock() // 60) & 0xFF


def learn(state: State, bd: BridgeDomain, mac: str, sw_if_index: int) -> None:
    """l2learn_process for a frame from ``mac`` arriving on ``sw_if_index``."""
    now = minute(state)
    if now != state.aged_at:
        age(state, now)
    old = bd.fib.get(mac)
    if old is None:
        if len(bd.fib) >= bd.learn_limit:
            return  # L2LEARN_ERROR_LIMIT: not learnt, forwarded all the same
    elif old == sw_if_index:
        if bd.learnt_at.get(mac) == now or len(bd.fib) > bd.learn_limit:
            return  # up to date, or above the limit (no update)
    bd.fib[mac] = sw_if_index
    bd.learnt_at[mac] = now


def forget(bd: BridgeDomain, mac: str) -> None:
    """Remove one entry (a stale one the lookup found)."""
    bd.fib.pop(mac, None)
    bd.learnt_at.pop(mac, None)


def age(state: State, now: int) -> None:
    """l2fib_scan's ageing: entries ``mac_age`` minutes old or older go."""
    state.aged_at = now
    for bd in state.bds.values():
        if not bd.mac_age:
            continue
        old = [m for m, at in bd.learnt_at.items() if (now - at) % 256 >= bd.mac_age]
        for mac in old:
            forget(bd, mac)

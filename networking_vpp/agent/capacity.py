"""What the host's VPP can hold: ports counted against its limits before VPP aborts.

Each port costs VPP resources that run out long before anything else does
(measured on a real VPP 26.06, real-vpp-facts #2 and #5):

* a port with port security has a MACIP ACL, whose 16 classifier tables each
  map a heap of their own: about 18 memory maps and 146 KB of VPP's main heap
  per port. The kernel allows a process ``vm.max_map_count`` maps (65,530 by
  default): VPP aborted at about 3,600 such ports, whatever its heap;
* a tap port's af_packet rings: about 28 MB of the host's memory with the
  256-frame TX ring the adapter asks for (78 MB with VPP's default), and a map.

:class:`Capacity` counts what the ports programmed here cost, warns once past
:data:`WARN_AT` of a limit, and refuses a new port that would pass it, with
the reason and the fix, so that the port is reported in error rather than
VPP aborting under every port of the host. Ports refused wait: when ports go,
they are tried again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

LOG = logging.getLogger(__name__)

#: a port with port security (MACIP ACL): memory maps and main heap (bytes)
SECURED_MAPS = 18
SECURED_HEAP = 146 * 1024
#: a tap port's af_packet rings: host memory (bytes) and memory maps
TAP_RING_BYTES = 28 * 1024 * 1024
TAP_MAPS = 1
#: what VPP itself uses before any port: maps (measured: 54,252 at 3,000 ports
#: of 18) and main heap (its own tables, plugins)
BASE_MAPS = 300
BASE_HEAP = 64 * 1024 * 1024
#: warn once a limit is this full
WARN_AT = 0.8
#: seconds the limits read from /proc are taken as they were
LIMITS_TTL = 5.0
DEFAULT_MAX_MAP_COUNT = 65530  # the kernel's default


def read_max_map_count() -> int:
    """The host's ``vm.max_map_count`` (the kernel's default if unreadable)."""
    try:
        return int(Path("/proc/sys/vm/max_map_count").read_text())
    except (OSError, ValueError):
        return DEFAULT_MAX_MAP_COUNT


def read_mem_total() -> int:
    """The host's memory in bytes (``MemTotal``); 0 if unreadable (not checked)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclasses.dataclass(frozen=True)
class Cost:
    """What one port takes of each limit."""

    maps: int = 0
    heap: int = 0
    ring: int = 0

    @classmethod
    def of(cls, kind: str, secured: bool) -> Cost:
        """A port's cost by its kind ("vhostuser" or "tap") and port security."""
        cost = cls(SECURED_MAPS, SECURED_HEAP) if secured else cls()
        if kind == "tap":
            cost = cls(cost.maps + TAP_MAPS, cost.heap, TAP_RING_BYTES)
        return cost


class Capacity:
    """The ports' cost against ``vm.max_map_count``, VPP's main heap and the host's memory."""

    def __init__(
        self,
        main_heap_mb: int = 1024,
        max_map_count: Callable[[], int] = read_max_map_count,
        mem_total: Callable[[], int] = read_mem_total,
    ) -> None:
        """``main_heap_mb``: VPP's main heap (startup.conf ``memory { main-heap-size }``;
        VPP's default is 1 GiB). The readers are looked at again at most every
        ``LIMITS_TTL`` seconds (an operator's sysctl counts from then)."""
        self._heap_bytes = main_heap_mb * 1024 * 1024
        self._max_map_count = max_map_count
        self._mem_total = mem_total
        self.costs: dict[str, Cost] = {}
        self._total = Cost()  # the sum of costs, kept as ports come and go
        self._warned: set[str] = set()
        self._limits_cache: tuple[float, dict[str, tuple[int, int, str]]] | None = None

    def _limits(self) -> dict[str, tuple[int, int, str]]:
        """resource -> (used by VPP before any port, limit, the fix).

        Read from /proc at most every ``LIMITS_TTL`` seconds: a cold start
        checks thousands of ports, and two file reads each were a tenth of
        the agent's CPU.
        """
        now = time.monotonic()
        if self._limits_cache is not None and now - self._limits_cache[0] < LIMITS_TTL:
            return self._limits_cache[1]
        limits = self._read_limits()
        self._limits_cache = (now, limits)
        return limits

    def _read_limits(self) -> dict[str, tuple[int, int, str]]:
        maps = self._max_map_count()
        limits = {
            "maps": (
                BASE_MAPS,
                maps,
                f"raise vm.max_map_count: sysctl -w vm.max_map_count={max(maps * 2, 262144)}",
            ),
            "heap": (
                BASE_HEAP,
                self._heap_bytes,
                "raise main-heap-size in VPP's startup.conf (memory { main-heap-size 2G }) "
                "and [vpp_agent] vpp_main_heap_mb with it",
            ),
        }
        mem = self._mem_total()
        if mem:
            limits["ring"] = (0, mem, "fewer tap ports on this host, or more memory")
        return limits

    def _used(self) -> Cost:
        return self._total

    def _count(self, port_id: str, cost: Cost | None) -> None:
        """Set (or, with None, drop) what ``port_id`` costs, and the total."""
        old = self.costs.pop(port_id, None)
        total = self._total
        if old is not None:
            total = Cost(total.maps - old.maps, total.heap - old.heap, total.ring - old.ring)
        if cost is not None:
            self.costs[port_id] = cost
            total = Cost(total.maps + cost.maps, total.heap + cost.heap, total.ring + cost.ring)
        self._total = total

    def check(self, port_id: str, cost: Cost) -> str | None:
        """Whether the port fits: None, and it is counted; or why not (and the fix)."""
        have = self.costs.get(port_id)
        used = self._used()
        if have is not None:
            used = Cost(used.maps - have.maps, used.heap - have.heap, used.ring - have.ring)
        for resource, (base, limit, fix) in self._limits().items():
            need = getattr(cost, resource)
            if not need:
                continue
            after = base + getattr(used, resource) + need
            if after > limit:
                return (
                    f"VPP's {_NAMES[resource]} would run out ({_amount(resource, after)} of "
                    f"{_amount(resource, limit)} with this port): {fix}"
                )
        self._count(port_id, cost)
        self._warn(used, cost)
        return None

    def _warn(self, used: Cost, cost: Cost) -> None:
        for resource, (base, limit, fix) in self._limits().items():
            after = base + getattr(used, resource) + getattr(cost, resource)
            if after > WARN_AT * limit:
                if resource not in self._warned:
                    self._warned.add(resource)
                    LOG.warning(
                        "VPP's %s is %d %% used (%s of %s) by %d ports: further ports will be "
                        "refused at the limit; %s",
                        _NAMES[resource],
                        100 * after // limit,
                        _amount(resource, after),
                        _amount(resource, limit),
                        len(self.costs),
                        fix,
                    )
            else:
                self._warned.discard(resource)  # said again if it fills up again

    def release(self, port_id: str) -> bool:
        """The port is gone from VPP; whether it held anything."""
        held = port_id in self.costs
        self._count(port_id, None)
        return held

    def reset(self, costs: dict[str, Cost]) -> None:
        """Count what VPP holds now (at a resync), and say how full it is."""
        self.costs, self._total = {}, Cost()
        for port_id, cost in costs.items():
            self._count(port_id, cost)
        self._warned.clear()
        self._limits_cache = None
        self._warn(self._used(), Cost())
        LOG.info("Capacity: %s", self.summary())

    def summary(self) -> str:
        """How full each limit is, for logs."""
        used = self._used()
        parts = []
        for resource, (base, limit, _fix) in self._limits().items():
            after = base + getattr(used, resource)
            parts.append(
                f"{_NAMES[resource]} {_amount(resource, after)} of {_amount(resource, limit)}"
            )
        return f"{len(self.costs)} ports; " + ", ".join(parts)


_NAMES = {"maps": "memory maps", "heap": "main heap", "ring": "host memory for af_packet rings"}


def _amount(resource: str, value: int) -> str:
    if resource == "maps":
        return f"{value:,}"
    return f"{value / (1024 * 1024):,.0f} MB"

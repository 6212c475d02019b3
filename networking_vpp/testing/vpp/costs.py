"""VPP's service times, charged to the messages the emulator serves on its socket.

A real VPP handles API messages on its single main thread, one after the
other, whichever client sent them: a slow message (``af_packet_create_v3``,
tens of milliseconds) delays every message behind it. The emulator's socket
server (``socket_server.py``) asks a :class:`CostModel` what each message
costs and sends the reply no earlier than such a main thread would have:
each message starts when it arrives or when the one before it (from any
client) is done, whichever is later, and takes its service time.

The defaults are VPP's own time per message as measured on a real VPP 26.06
(no DPDK, 2 cores; real-vpp-facts #2, #5, #6 and issue 15's table), not the
round trip: the round trip (>= 0.38 ms through vpp_papi) is mostly the
transport, which the socket and vpp_papi already cost here.

* ``af_packet_create_v3``: 45-370 ms, median 59 ms (opening the PACKET socket
  and mapping its rings); ``af_packet_delete`` unmaps them.
* ``macip_acl_add_replace``: the MACIP ACL's 16 classifier tables, each with a
  heap of its own (about 18 memory maps a port). On 1,000 vhost-user ports
  with security groups VPP used 2.0 s of CPU, about 1.0 s of it polling the
  ports' queues (14 % of a core over 7.4 s): about 1 ms a port for its ~8
  messages, most of it the MACIP ACL.
* everything else, dumps' control_pings included: a few tens of microseconds,
  plus a little per detail a dump returns.

The emulator's own speed is not modelled (nor tuned): when it is slower than
VPP would be, its own time is the cost.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping

#: VPP's main-thread time for a message the table does not name (seconds)
DEFAULT_SERVICE = 50e-6
#: and for each detail a dump returns
PER_DETAIL = 2e-6
#: VPP's measured service times by message (seconds)
DEFAULTS: Mapping[str, float] = {
    "af_packet_create_v3": 59e-3,
    "af_packet_delete": 5e-3,
    "macip_acl_add_replace": 600e-6,
    "macip_acl_del": 200e-6,
    "create_vhost_user_if_v2": 100e-6,
    "delete_vhost_user_if": 100e-6,
    "acl_interface_set_acl_list": 100e-6,
    "acl_add_replace": 100e-6,
}
# A pause shorter than this is carried into the next message's: time.sleep
# oversleeps by about as much, which would charge short messages several times.
_MIN_PAUSE = 200e-6


@dataclasses.dataclass
class CostModel:
    """Service times by message name; ``overrides`` replace the defaults."""

    overrides: Mapping[str, float] = dataclasses.field(default_factory=dict)
    default: float = DEFAULT_SERVICE
    per_detail: float = PER_DETAIL

    def __post_init__(self) -> None:
        self._table = {**DEFAULTS, **self.overrides}
        self._lock = threading.Lock()
        self._busy_until = 0.0
        #: seconds charged so far (what VPP's main thread would have spent)
        self.charged = 0.0

    def service(self, message: str, details: int = 0) -> float:
        """VPP's time to handle ``message`` that answers with ``details`` rows."""
        return self._table.get(message, self.default) + details * self.per_detail

    def charge(self, arrived: float, message: str, details: int = 0) -> float:
        """The time (``time.monotonic``) the message's reply may leave: VPP's
        main thread takes messages one at a time, in the order they arrive."""
        cost = self.service(message, details)
        with self._lock:
            done = max(arrived, self._busy_until) + cost
            self._busy_until = done
            self.charged += cost
        return done

    @staticmethod
    def wait_until(done: float) -> None:
        """Hold the reply until ``done`` (short pauses are carried, see above)."""
        pause = done - time.monotonic()
        if pause > _MIN_PAUSE:
            time.sleep(pause)

    @classmethod
    def parse(cls, spec: str) -> CostModel:
        """A model from ``name=seconds,...`` (``default=`` and ``per_detail=``
        set those); an empty spec is the defaults."""
        overrides: dict[str, float] = {}
        extra: dict[str, float] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, _, value = item.partition("=")
            if not value:
                raise ValueError(f"cost {item!r}: expected <message>=<seconds>")
            if name in ("default", "per_detail"):
                extra[name] = float(value)
            else:
                overrides[name] = float(value)
        return cls(overrides=overrides, **extra)

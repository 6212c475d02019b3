"""A wire between emulated hosts: their uplinks on one Ethernet segment.

Each emulated VPP walks frames on its own; a :class:`Wire` joins named uplink
ports of several of them (``{"compute-1": (vpp1, "GigabitEthernet0/8/0"),
...}``) as a physical network carrying every VLAN would: a frame leaving one
of them, tags and all, arrives on every other. A frame crosses the wire at
most once (each host's bridge domains never send a frame back out of the
uplink it came in by, and no test wants a loop), so a walk ends.

    wire = Wire({"h1": (vpp1, UPLINK), "h2": (vpp2, UPLINK)})
    wire.send("h1", frame, ingress=port_sw_if_index)   # a VM on h1 sends
    wire.inject(frame)                                   # a switch floods it
"""

from __future__ import annotations

import dataclasses

from networking_vpp.testing.vpp import Egress, Frame, VppEmulator


@dataclasses.dataclass(frozen=True)
class Delivery:
    """A copy of a frame that left a host's VPP by a port that is not on the wire."""

    host: str
    egress: Egress

    @property
    def where(self) -> tuple[str, str]:
        """(host, port name)."""
        return self.host, self.egress.name


class Wire:
    """One Ethernet segment joining the named hosts' uplink ports."""

    def __init__(self, ends: dict[str, tuple[VppEmulator, str]]) -> None:
        self.ends = dict(ends)

    def send(self, host: str, frame: Frame, ingress: int | str) -> list[Delivery]:
        """``frame`` arrives on ``host``'s port ``ingress``: every copy that
        reaches a port off the wire, on any host (over the wire at most once)."""
        vpp, uplink = self.ends[host]
        out: list[Delivery] = []
        for egress in vpp.walk(frame, ingress):
            if egress.name != uplink:
                out.append(Delivery(host, egress))
                continue
            assert egress.frame is not None  # the walk records what left
            # On the wire a frame has its bytes only, not VPP's metadata.
            wired = dataclasses.replace(egress.frame, counted=None)
            for other in self.ends:
                if other != host:
                    out.extend(self._arrive(other, wired))
        return out

    def inject(self, frame: Frame, hosts: tuple[str, ...] = ()) -> list[Delivery]:
        """``frame`` arrives from the wire on the hosts' uplinks (default: all)."""
        out: list[Delivery] = []
        for host in hosts or tuple(self.ends):
            out.extend(self._arrive(host, frame))
        return out

    def _arrive(self, host: str, frame: Frame) -> list[Delivery]:
        vpp, uplink = self.ends[host]
        return [Delivery(host, e) for e in vpp.walk(frame, uplink) if e.name != uplink]

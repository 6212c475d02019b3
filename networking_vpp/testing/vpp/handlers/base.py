"""The handler registry: API message name -> function that implements it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from networking_vpp.testing.vpp.kernel import KernelLinks
from networking_vpp.testing.vpp.state import State

if TYPE_CHECKING:
    from networking_vpp.testing.vpp.frameio import FrameIO


class Env(Protocol):
    """What a handler may see of the emulator (all under the emulator's lock)."""

    state: State
    vpe_pid: int
    kernel_interfaces: KernelLinks  # name -> TX checksum offload on; ifindex, admin state
    frames: FrameIO | None  # af_packet sockets on real devices (None: in-memory kernel)

    def vm_waiting(self, sock_filename: str) -> int:
        """Memory regions of a VM waiting to connect to this socket (0: none)."""
        ...

    def served_socket_closed(self, sock_filename: str) -> None:
        """VPP closed a socket it served with a VM on it: that VM is cut off."""
        ...


#: handler(env, client_index, args) -> reply fields | [details] | (reply, [details])
Handler = Callable[[Env, int, dict[str, Any]], Any]
HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the implementation of message ``name``."""

    def register(fn: Handler) -> Handler:
        if name in HANDLERS:
            raise ValueError(f"two handlers for {name}")
        HANDLERS[name] = fn
        return fn

    return register

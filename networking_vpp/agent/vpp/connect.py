"""Production connection to VPP through vpp_papi (the only vpp_papi import)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from networking_vpp.agent.vpp.adapter import VppAdapter
from networking_vpp.agent.vpp.transport import SocketTransport


def papi_client_factory(
    api_socket: str, api_dir: str, read_timeout: float = 10.0
) -> Callable[[], Any]:
    """A factory of ``VPPApiClient`` objects talking to VPP's API socket.

    The ``.api.json`` files come from the installed VPP (``api_dir``), so the
    agent always speaks the API version the running VPP defines.
    """

    def make() -> Any:
        from vpp_papi import VPPApiClient  # imported late: the package is optional

        if not any(Path(api_dir).glob("**/*.api.json")):
            # vpp_papi's own words for it: "Missing JSON message definitions".
            raise FileNotFoundError(f"no VPP API definitions (*.api.json) under {api_dir}")
        client = VPPApiClient(
            apidir=[api_dir], server_address=api_socket, read_timeout=read_timeout
        )
        # vpp_papi takes no transport as an argument; ours speaks the same
        # protocol at a fraction of its per-message cost (transport.py).
        client.transport = SocketTransport(
            client, read_timeout=read_timeout, server_address=api_socket
        )
        return client

    return make


def socket_accepts(api_socket: str, timeout: float = 0.5) -> Callable[[], bool]:
    """A probe: whether VPP's API socket accepts a connection now.

    What the agent looks at while VPP is away, several times a second: a
    connect() and a close(), where making a ``VPPApiClient`` would load and
    parse every ``.api.json`` file first. A socket file left by a VPP that
    died refuses the connection, so the file's existence alone would not do.
    """

    def probe() -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(api_socket)
            except OSError:
                return False
        return True

    return probe


def vpp_adapter(
    api_socket: str, api_dir: str, name: str = "vpp-agent", read_timeout: float = 10.0
) -> VppAdapter:
    """The agent's adapter on VPP's API socket: vpp_papi clients, probed by connect().

    What ``vpp-agent`` runs and what the tests run against the emulator's socket.
    """
    return VppAdapter(
        papi_client_factory(api_socket, api_dir, read_timeout),
        name=name,
        address=api_socket,
        probe=socket_accepts(api_socket),
    )

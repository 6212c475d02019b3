"""The probe the agent uses to look for VPP while it is away."""

from __future__ import annotations

import socket
from pathlib import Path

from networking_vpp.agent.vpp.connect import socket_accepts


def test_a_listening_socket_accepts(tmp_path: Path) -> None:
    path = str(tmp_path / "api.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        assert socket_accepts(path)()


def test_no_socket_or_one_a_dead_vpp_left_does_not(tmp_path: Path) -> None:
    path = str(tmp_path / "api.sock")
    assert not socket_accepts(path)()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)  # the file stays after the process closed it
    assert Path(path).exists()
    assert not socket_accepts(path)()

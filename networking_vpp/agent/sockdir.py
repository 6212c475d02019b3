"""The vhost-user socket directory, made so that libvirt's QEMU can use it.

With QEMU as the socket server (the default role) QEMU, which libvirt runs as
an unprivileged user, creates each port's socket in this directory, so the
directory must be writable by QEMU's group; setgid makes the sockets in it
that group's too. The agent (root) makes it at every resync: a directory the
operator put right, or a group added since, is taken up without a restart.
"""

from __future__ import annotations

import dataclasses
import grp
import logging
import os

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SocketDir:
    """Where the sockets live, whose group owns the directory (None: leave it), its mode."""

    path: str
    group: str | None
    mode: int


def prepare(sockdir: SocketDir) -> str | None:
    """Make ``sockdir`` (with its parents) as configured; the problem, or None.

    Never raises: a directory the agent cannot make is reported on the
    vhost-user ports, and the rest of the host goes on.
    """
    where = f"vhost-user socket directory {sockdir.path}"
    gid = -1
    if sockdir.group:
        try:
            gid = grp.getgrnam(sockdir.group).gr_gid
        except KeyError:
            return f"{where}: there is no group {sockdir.group!r} on this host"
    try:
        os.makedirs(sockdir.path, exist_ok=True)
        if gid != -1:
            os.chown(sockdir.path, -1, gid)
        # After chown, which clears setgid; makedirs' mode is cut by the umask.
        os.chmod(sockdir.path, sockdir.mode)
    except OSError as exc:
        return f"{where}: {exc.strerror or exc}"
    return None

"""The vhost-user socket directory the agent makes for QEMU."""

from __future__ import annotations

import grp
import os
import stat

from networking_vpp.agent.sockdir import SocketDir, prepare


def test_made_with_parents_group_and_mode(tmp_path):
    group = grp.getgrgid(os.getegid()).gr_name
    path = tmp_path / "a" / "b"
    assert prepare(SocketDir(str(path), group, 0o2770)) is None
    made = path.stat()
    assert (stat.S_IMODE(made.st_mode), made.st_gid) == (0o2770, os.getegid())


def test_an_existing_directory_is_put_right(tmp_path):
    path = tmp_path / "d"
    path.mkdir(mode=0o700)
    assert prepare(SocketDir(str(path), None, 0o755)) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


def test_problems_are_returned_not_raised(tmp_path):
    (tmp_path / "file").write_text("")
    problem = prepare(SocketDir(str(tmp_path / "file" / "d"), None, 0o2770))
    assert problem is not None and str(tmp_path / "file" / "d") in problem
    problem = prepare(SocketDir(str(tmp_path / "d"), "no-such-group-here", 0o2770))
    assert problem is not None and "no-such-group-here" in problem

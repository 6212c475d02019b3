"""The dev cloud's etcd identities: auth on, as ``networking-vpp etcd-setup`` sets it up.

Every dev cloud (the developer's, the system tests', the fault suite's) runs etcd with
auth on and the identities production has: Neutron's API as the server identity (in
neutron.conf), each fake host's agent as its own host identity, and root only for the
harness (the tour, the tests' checks). The snippets live in ``etc/etcd-identities/``
of the cloud's directory, made by the same code as the command, so a restart of the
same directory finds its users and passwords again (and adds hosts it did not have).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from networking_vpp.cli import etcd_setup
from networking_vpp.common import keys
from networking_vpp.common.etcd.settings import EtcdSettings
from networking_vpp.testing.devcloud.layout import Layout

ROOT = etcd_setup.ROOT
SERVER = etcd_setup.SERVER_USER


def directory(layout: Layout) -> Path:
    """Where the cloud's identity snippets are."""
    return layout.etc / "etcd-identities"


def snippet(layout: Layout, identity: str) -> Path:
    """The ``[etcd]`` snippet of ``root``, the server (``SERVER``) or a host's name."""
    if identity == ROOT:
        name = "root.ini"
    elif identity == SERVER:
        name = "server.ini"
    else:
        name = f"host-{identity}.ini"
    return directory(layout) / name


def set_up(
    layout: Layout,
    endpoints: list[str],
    hosts: Iterable[str],
    root_password: str | None = None,
) -> list[str]:
    """Auth on, with the server's and ``hosts``' identities; the steps it took.

    ``root_password``: the password of root in an etcd that has auth on already (a
    test's :class:`~networking_vpp.testing.etcd.EtcdCluster`), as an operator would
    put it in ``root.ini`` before running the command.
    """
    path = snippet(layout, ROOT)
    if root_password is not None and not path.exists():
        directory(layout).mkdir(parents=True, exist_ok=True)
        etcd_setup.write_identity(path, ROOT, root_password)
    settings = EtcdSettings(list(endpoints), timeout=5.0)
    return etcd_setup.ensure(settings, keys.KeySpace(), directory(layout), hosts)


def settings(layout: Layout, endpoints: list[str], identity: str = ROOT) -> EtcdSettings:
    """Client settings of the cloud's etcd as ``identity`` (root by default)."""
    username, password = etcd_setup.read_identity(snippet(layout, identity))
    return EtcdSettings(list(endpoints), username=username, password=password)

"""Options every ``networking-vpp`` command shares, and how they become an etcd client.

The ``[etcd]`` section is read from ``--config-file`` (neutron.conf, the agent's
file, or any file with an ``[etcd]`` section), as oslo.config reads it for the
server and the agent; ``--etcd-endpoint`` and ``--prefix`` override it.
"""

from __future__ import annotations

import argparse

from oslo_config import cfg

from networking_vpp.common import config, keys
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.settings import EtcdSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config-file``, ``--config-dir``, ``--etcd-endpoint``, ``--prefix``, ``--debug``."""
    parser.add_argument(
        "--config-file",
        action="append",
        default=[],
        metavar="PATH",
        help="configuration file (repeatable), e.g. neutron.conf and ml2_conf.ini",
    )
    parser.add_argument(
        "--config-dir", action="append", default=[], metavar="DIR", help="directory of *.conf"
    )
    parser.add_argument(
        "--etcd-endpoint",
        action="append",
        default=[],
        metavar="URL",
        help="etcd client URL (repeatable); overrides [etcd] endpoints",
    )
    parser.add_argument("--prefix", help="etcd key prefix; overrides [etcd] prefix")
    parser.add_argument("--debug", action="store_true", help="log what happens, to stderr")


def oslo_args(args: argparse.Namespace) -> list[str]:
    """The command line oslo.config sees: only the file options."""
    out: list[str] = []
    for path in args.config_file:
        out += ["--config-file", path]
    for path in args.config_dir:
        out += ["--config-dir", path]
    return out


def apply_overrides(conf: cfg.ConfigOpts, args: argparse.Namespace) -> None:
    """``--etcd-endpoint`` and ``--prefix`` win over the files."""
    if args.etcd_endpoint:
        conf.set_override("endpoints", args.etcd_endpoint, config.ETCD_GROUP)
    if args.prefix:
        conf.set_override("prefix", args.prefix, config.ETCD_GROUP)


def load_etcd(args: argparse.Namespace) -> tuple[EtcdClient, keys.KeySpace]:
    """A client and key space from the files and flags (no Neutron involved)."""
    conf = cfg.ConfigOpts()
    config.register_etcd_opts(conf)
    # Without --config-file, oslo.config looks where networking-vpp's files live
    # (~/.networking-vpp/, /etc/networking-vpp/, ...): none there is fine.
    conf(args=oslo_args(args), project="networking-vpp", prog="networking-vpp")
    apply_overrides(conf, args)
    return client_from(conf)


def client_from(conf: cfg.ConfigOpts) -> tuple[EtcdClient, keys.KeySpace]:
    """The client and key space a parsed configuration describes."""
    group = conf[config.ETCD_GROUP]
    return EtcdClient(EtcdSettings.from_conf(conf)), keys.KeySpace(group.prefix)

"""Where the dev cloud keeps everything, and the ports it picked.

One directory (``.devcloud/`` in the repository by default) holds the
configuration, data, logs and PID files of every component, plus
``cloud.json``: the loopback ports chosen at start-up, so that the tour, the
tests, the benchmark and ``down`` find a running cloud without guessing. A
restart of the same directory keeps the ports it had (:func:`choose_ports`),
so a shell's exports and a browser's tabs stay right.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

HOSTS = ("compute-1", "compute-2")
# With Neutron's agents: a third host whose Nova plugs tap vifs ([ml2_vpp] tap_hosts),
# where the tour's and the system tests' namespace VMs live (testing/devcloud/vms.py).
TAP_HOST = "compute-3"
# physnet3 is the external network's (the L3 tour's gateway namespace is on its wire).
PHYSNETS = ("physnet1", "physnet2", "physnet3")


@dataclasses.dataclass
class Ports:
    """Loopback TCP ports of the running components."""

    mariadb: int = 0
    etcd_client: int = 0
    etcd_peer: int = 0
    neutron: int = 0
    nova: int = 0
    nova_metadata: int = 0  # the fake Nova's metadata API (behind Neutron's metadata agent)
    rabbitmq: int = 0  # AMQP
    rabbitmq_dist: int = 0  # the Erlang distribution of the RabbitMQ node
    epmd: int = 0  # the RabbitMQ node's private epmd
    hosts: dict[str, int] = dataclasses.field(default_factory=dict)  # host -> fake_host HTTP
    # client URLs of an etcd the cloud uses but did not start (empty: its own member)
    etcd_endpoints: list[str] = dataclasses.field(default_factory=list)
    # what runs besides the core (kept here so that status, env and down know)
    neutron_agents: bool = False  # RabbitMQ, neutron-rpc-server, DHCP and metadata agents
    l3: bool = False  # the router service plugin and neutron-l3-agent


@dataclasses.dataclass(frozen=True)
class Layout:
    """Paths below the dev cloud's base directory."""

    base: Path

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    @property
    def run(self) -> Path:
        """PID files, sockets, temporary files."""
        return self.base / "run"

    @property
    def mariadb_data(self) -> Path:
        return self.base / "mariadb"

    @property
    def mariadb_socket(self) -> Path:
        return self.run / "mariadb.sock"

    @property
    def etcd_data(self) -> Path:
        return self.base / "etcd"

    @property
    def rabbitmq_dir(self) -> Path:
        return self.base / "rabbitmq"

    @property
    def neutron_state(self) -> Path:
        return self.base / "neutron"

    @property
    def vhostuser_dir(self) -> Path:
        return self.run / "vhu"

    @property
    def tmp(self) -> Path:
        # neutron.common.wsgi_utils drops per-master flag files into TMPDIR.
        return self.run / "tmp"

    @property
    def state_file(self) -> Path:
        return self.base / "cloud.json"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def make_dirs(self) -> None:
        for path in (
            self.etc,
            self.logs,
            self.run,
            self.tmp,
            self.vhostuser_dir,
            self.neutron_state / "lock",
        ):
            path.mkdir(parents=True, exist_ok=True)

    # --- the chosen ports ---------------------------------------------------------
    def save_ports(self, ports: Ports) -> None:
        self.state_file.write_text(json.dumps(dataclasses.asdict(ports), indent=2) + "\n")

    def load_ports(self) -> Ports | None:
        """The ports of the cloud last started here, or None."""
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        known = {f.name for f in dataclasses.fields(Ports)}
        return Ports(**{k: v for k, v in data.items() if k in known})


# The single-port fields of Ports, in the order they are picked.
_SINGLE = (
    "mariadb",
    "etcd_client",
    "etcd_peer",
    "neutron",
    "nova",
    "nova_metadata",
    "rabbitmq",
    "rabbitmq_dist",
    "epmd",
)


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now (as servers bind: SO_REUSEADDR)."""
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_ports(
    previous: Ports | None,
    hosts: Iterable[str],
    pick: Callable[[], int],
    external_etcd: list[str] | None = None,
    free: Callable[[int], bool] = port_free,
) -> Ports:
    """The ports of a (re)start: the previous start's where still free, new ones otherwise.

    ``pick`` gives a new free port; ``free`` tells whether a previous one can be
    listened on again. No port is given twice.
    """
    old = previous or Ports()
    taken: set[int] = set()

    def keep_or_pick(port: int) -> int:
        if port and port not in taken and free(port):
            taken.add(port)
            return port
        while True:
            new = pick()
            if new not in taken:
                taken.add(new)
                return new

    chosen = Ports(etcd_endpoints=list(external_etcd or []))
    for name in _SINGLE:
        if external_etcd and name.startswith("etcd_"):
            continue  # not ours to start
        setattr(chosen, name, keep_or_pick(getattr(old, name)))
    chosen.hosts = {h: keep_or_pick(old.hosts.get(h, 0)) for h in hosts}
    return chosen

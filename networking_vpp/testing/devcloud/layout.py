"""Where the dev cloud keeps everything, and the ports it picked.

One directory (``.devcloud/`` in the repository by default) holds the
configuration, data, logs and PID files of every component, plus
``cloud.json``: the loopback ports chosen at start-up, so that the tour, the
tests, the benchmark and ``down`` find a running cloud without guessing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

HOSTS = ("compute-1", "compute-2")
PHYSNETS = ("physnet1", "physnet2")


@dataclasses.dataclass
class Ports:
    """Loopback TCP ports of the running components."""

    mariadb: int = 0
    etcd_client: int = 0
    etcd_peer: int = 0
    neutron: int = 0
    nova: int = 0
    hosts: dict[str, int] = dataclasses.field(default_factory=dict)  # host -> fake_host HTTP
    # client URLs of an etcd the cloud uses but did not start (empty: its own member)
    etcd_endpoints: list[str] = dataclasses.field(default_factory=list)


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
        return Ports(**data)

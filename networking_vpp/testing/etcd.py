"""Real etcd servers for tests: a single member or a loopback cluster, plain, TLS or auth.

Shipped with the package so that users can test their deployments' code paths too::

    with EtcdServer(tls=True, auth=True) as server:
        client = EtcdClient(server.settings(user="neutron"))
        server.kill(); server.restart()          # a crash, and the same member again

Every process gets free loopback ports and a private data directory, is waited for until
healthy (never a fixed sleep), and dies with the test process: on ``stop()``, at exit, and
(on Linux) through PR_SET_PDEATHSIG if the test process is itself killed. PDEATHSIG fires when
the *thread* that started etcd ends: start and restart members from a long-lived thread.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from typing import Any, Self

from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.settings import EtcdSettings
from networking_vpp.common.etcd.transport import make_session
from networking_vpp.testing.pki import Pki, make_pki

ETCD_BIN = os.environ.get("NETWORKING_VPP_ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"
ROOT_PASSWORD = "root-secret"
NEUTRON_USER = "neutron"
NEUTRON_PASSWORD = "neutron-secret"

_LIVE: set[EtcdCluster] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # PR_SET_PDEATHSIG=1: SIGKILL etcd when the thread that started it dies.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


class EtcdStartError(RuntimeError):
    """etcd did not come up (the message carries the end of its log)."""


class _Member:
    """One etcd process: its ports and data survive kill/restart."""

    def __init__(self, name: str, workdir: str, scheme: str) -> None:
        self.name = name
        self.data_dir = os.path.join(workdir, name)
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.scheme = scheme
        self.client_port = self.peer_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def pick_ports(self) -> None:
        self.client_port, self.peer_port = free_port(), free_port()

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self, args: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [ETCD_BIN, "--name", self.name, "--data-dir", self.data_dir, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent,
            )

    def signal_and_wait(self, sig: int, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode(errors="replace")
        except OSError:
            return "(no log)"


class EtcdCluster:
    """``size`` etcd members on loopback; member ``i`` can be killed and restarted.

    ``tls``: clients must use https with the generated CA (and client certificate when
    ``client_cert_auth``). ``auth``: users ``root`` and ``neutron`` (read-write on every key
    under ``auth_prefix``), auth enabled; ``auth_token_ttl`` shortens idle token expiry.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        tls: bool = False,
        client_cert_auth: bool = True,
        auth: bool = False,
        auth_prefix: str = "/",
        auth_token_ttl: int | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 30.0,
    ) -> None:
        self.size = size
        self.tls = tls
        self.client_cert_auth = client_cert_auth
        self.auth = auth
        self.auth_prefix = auth_prefix
        self.auth_token_ttl = auth_token_ttl
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.workdir = ""
        self.pki: Pki | None = None
        self.members: list[_Member] = []
        self._token = ""

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> Self:
        """Start every member and wait until all are healthy (retrying on a port clash)."""
        if self.members and any(m.running for m in self.members):
            return self
        self.workdir = tempfile.mkdtemp(prefix="nvpp-etcd-")
        _LIVE.add(self)
        if self.tls:
            self.pki = make_pki(os.path.join(self.workdir, "pki"))
        scheme = "https" if self.tls else "http"
        self.members = [_Member(f"m{i}", self.workdir, scheme) for i in range(self.size)]
        for attempt in range(3):
            self._token = f"nvpp-{uuid.uuid4().hex[:12]}"
            for member in self.members:
                member.pick_ports()
            for member in self.members:
                member.launch(self._args(member))
            try:
                self._wait_healthy(self.members)
                break
            except EtcdStartError:
                died = any(not m.running for m in self.members)
                for member in self.members:
                    member.signal_and_wait(signal.SIGKILL)
                    shutil.rmtree(member.data_dir, ignore_errors=True)
                if not died or attempt == 2:  # a dead child is usually a port clash: retry
                    self.stop()
                    raise
        if self.auth:
            self._setup_auth()
        return self

    def stop(self) -> None:
        """Stop every member and delete all data (the end of this cluster)."""
        for member in self.members:
            member.signal_and_wait(signal.SIGTERM, timeout=5.0)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        _LIVE.discard(self)

    def kill(self, index: int = 0) -> None:
        """SIGKILL member ``index`` (its data stays, as after a crash)."""
        self.members[index].signal_and_wait(signal.SIGKILL)

    def restart(self, index: int = 0, wait: bool = True) -> None:
        """Start member ``index`` again on the same ports and data (killing it first if up)."""
        member = self.members[index]
        member.signal_and_wait(signal.SIGKILL)
        member.launch(self._args(member))
        if wait:
            self._wait_healthy([member])

    def wait_healthy(self, indices: list[int] | None = None) -> None:
        """Wait until members ``indices`` (default: all) are healthy.

        After a full outage, restart every member with ``wait=False`` and then wait
        here: a lone member cannot be healthy before a quorum is back.
        """
        chosen = range(len(self.members)) if indices is None else indices
        self._wait_healthy([self.members[i] for i in chosen])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what clients need ----------------------------------------------------------------
    @property
    def endpoints(self) -> list[str]:
        """Client URLs of all members."""
        return [m.client_url for m in self.members]

    @property
    def running(self) -> bool:
        """True if every member is up."""
        return bool(self.members) and all(m.running for m in self.members)

    def settings(self, user: str | None = "root", **over: Any) -> EtcdSettings:
        """Client settings for this cluster (TLS files; ``user`` when auth is on)."""
        kwargs: dict[str, Any] = {"endpoints": self.endpoints}
        if self.pki is not None:
            kwargs["ca_cert"] = self.pki.ca_cert
            kwargs["cert_file"] = self.pki.client_cert
            kwargs["key_file"] = self.pki.client_key
        if self.auth and user:
            kwargs["username"] = user
            kwargs["password"] = ROOT_PASSWORD if user == "root" else NEUTRON_PASSWORD
        kwargs.update(over)
        return EtcdSettings(**kwargs)

    def leader_index(self) -> int:
        """Index of the member that leads now (asks the running members)."""
        ids: dict[int, int] = {}
        leader = 0
        session = make_session(self.settings(user=None))
        try:
            for i, member in enumerate(self.members):
                if not member.running:
                    continue
                try:
                    resp = session.post(member.client_url + "/v3/maintenance/status", json={})
                    status = resp.json()
                except (OSError, ValueError):
                    continue
                ids[codec.as_int(status.get("header", {}).get("member_id"))] = i
                leader = leader or codec.as_int(status.get("leader"))
        finally:
            session.close()
        if leader not in ids:
            raise RuntimeError("no member knows of a running leader")
        return ids[leader]

    # --- internals ----------------------------------------------------------------------
    def _args(self, member: _Member) -> list[str]:
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        args = [
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", self._token,
            # Faster elections than the defaults (100/1000 ms): kills in tests heal sooner.
            "--heartbeat-interval", "50",
            "--election-timeout", "500",
        ]  # fmt: skip
        if self.pki is not None:
            args += [
                "--cert-file", self.pki.server_cert,
                "--key-file", self.pki.server_key,
                "--trusted-ca-file", self.pki.ca_cert,
            ]  # fmt: skip
            if self.client_cert_auth:
                args.append("--client-cert-auth")
        if self.auth_token_ttl:
            args += ["--auth-token-ttl", str(self.auth_token_ttl)]
        return args + list(self.extra_args)

    def _wait_healthy(self, members: list[_Member]) -> None:
        session = make_session(self.settings(user=None, timeout=1.0))
        deadline = time.monotonic() + self.startup_timeout
        try:
            for member in members:
                while not self._healthy(session, member):
                    if not member.running:
                        raise EtcdStartError(f"etcd {member.name} died:\n{member.log_tail()}")
                    if time.monotonic() > deadline:
                        raise EtcdStartError(
                            f"etcd {member.name} not healthy after {self.startup_timeout}s:\n"
                            + member.log_tail()
                        )
                    time.sleep(0.05)
        finally:
            session.close()

    @staticmethod
    def _healthy(session: Any, member: _Member) -> bool:
        try:
            resp = session.get(member.client_url + "/health", timeout=1.0)
            return bool(resp.status_code == 200 and resp.json().get("health") == "true")
        except (OSError, ValueError):  # requests' errors are OSErrors
            return False

    def _setup_auth(self) -> None:
        session = make_session(self.settings(user=None))
        perm = {
            "permType": "READWRITE",
            "key": codec.b64(self.auth_prefix),
            "range_end": codec.b64(codec.prefix_range_end(self.auth_prefix)),
        }
        calls: list[tuple[str, dict[str, Any]]] = [
            ("auth/user/add", {"name": "root", "password": ROOT_PASSWORD}),
            ("auth/role/add", {"name": "root"}),
            ("auth/user/grant", {"user": "root", "role": "root"}),
            ("auth/user/add", {"name": NEUTRON_USER, "password": NEUTRON_PASSWORD}),
            ("auth/role/add", {"name": NEUTRON_USER}),
            ("auth/role/grant", {"name": NEUTRON_USER, "perm": perm}),
            ("auth/user/grant", {"user": NEUTRON_USER, "role": NEUTRON_USER}),
            ("auth/enable", {}),
        ]
        try:
            for path, body in calls:
                resp = session.post(f"{self.endpoints[0]}/v3/{path}", json=body, timeout=10)
                if resp.status_code != 200:
                    raise EtcdStartError(f"{path}: HTTP {resp.status_code} {resp.text}")
        finally:
            session.close()


class EtcdServer(EtcdCluster):
    """A single etcd member (see :class:`EtcdCluster` for the options)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(1, **kwargs)

    @property
    def endpoint(self) -> str:
        """The client URL."""
        return self.endpoints[0]


@atexit.register
def _kill_leftovers() -> None:
    for cluster in list(_LIVE):
        for member in cluster.members:
            member.signal_and_wait(signal.SIGKILL)
        if cluster.workdir:
            shutil.rmtree(cluster.workdir, ignore_errors=True)

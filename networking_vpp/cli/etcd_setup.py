"""``networking-vpp etcd-setup``: etcd auth on, one identity for the server, one per host.

What each identity may do (``DESIGN.md``, "Trust"): the server is the only writer of
``/nodes/``, ``/global/``, ``/election/`` and ``/kick/`` and reads everything below the
prefix (the reports in ``/state/`` among it); the identity of host *H* reads
``/nodes/H/`` and ``/global/`` and writes ``/state/H/`` only (its leased liveness key
included: etcd lets any user grant and keep alive a lease, and checks the key a put
attaches it to). ``root`` administers and is used by nobody else.

etcd's HTTP gateway, which every networking-vpp process talks to, cannot take an
identity from a client certificate (with auth on it refuses any certificate that has a
Common Name), so identities are etcd users with passwords; TLS, with client
certificates where wanted, protects the transport. Users and roles share a name, so a
role is never granted to a user it was not made for.

Passwords live in one directory (``--output``), one ``[etcd]`` snippet per identity
(``root.ini``, ``server.ini``, ``host-<host>.ini``, mode 0600), which the server and
each agent read as one more ``--config-file``. A snippet that exists before its user
does gives the password (the operator's); otherwise one is generated and the snippet
written before the user is made, so a run that stops half-way loses no password. No
password is ever printed or logged.

Idempotent: a second run changes nothing. Each run converges every identity it knows
(those named with ``--host``, those of the agents already reporting with ``--seen``,
and those it made before, found by their user names) to exactly its permissions,
revoking whatever else was granted. ``--dry-run`` prints what it would change and
exits 1 if there is anything.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import os
import secrets
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from oslo_config import cfg

from networking_vpp.cli import conf
from networking_vpp.common import config, keys
from networking_vpp.common.etcd import codec
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.common.etcd.errors import EtcdAuthError, EtcdError
from networking_vpp.common.etcd.settings import EtcdSettings

ROOT = "root"  # etcd's own name: auth enable wants a user root with the role root
SERVER_USER = "networking-vpp-server"
HOST_USER_PREFIX = "networking-vpp-host-"
PERM_TYPES = ("READ", "WRITE", "READWRITE")


def host_user(host: str) -> str:
    """The etcd user (and role) of one host's agent."""
    return HOST_USER_PREFIX + host


@dataclasses.dataclass(frozen=True, order=True)
class Perm:
    """One permission of a role: ``perm_type`` on the keys in ``[key, range_end)``."""

    perm_type: str
    key: bytes
    range_end: bytes

    @classmethod
    def prefix(cls, perm_type: str, prefix: str) -> Perm:
        """``perm_type`` on every key that starts with ``prefix``."""
        return cls(perm_type, codec.to_bytes(prefix), codec.prefix_range_end(prefix))

    def describe(self) -> str:
        """``READ /networking-vpp/global/*``, for the operator."""
        key = self.key.decode(errors="replace")
        if self.range_end == codec.prefix_range_end(self.key):
            return f"{self.perm_type} {key}*"
        if not self.range_end:
            return f"{self.perm_type} {key}"
        return f"{self.perm_type} [{key}, {self.range_end.decode(errors='replace')})"


@dataclasses.dataclass(frozen=True)
class Identity:
    """A user, its role of the same name, and the snippet holding its password."""

    name: str
    perms: frozenset[Perm]
    snippet: str  # file name in the output directory

    @property
    def what(self) -> str:
        return "the server" if self.name == SERVER_USER else self.name


def server_identity(keyspace: keys.KeySpace) -> Identity:
    """The server's: writes the desired state and its own coordination keys, reads all."""
    perms = [Perm.prefix("READ", keyspace.root_prefix())]
    perms += [
        Perm.prefix("READWRITE", prefix)
        for prefix in (
            keyspace.nodes_prefix(),
            keyspace.global_prefix(),
            keyspace.election_prefix(),
            keyspace.kick_prefix(),
        )
    ]
    return Identity(SERVER_USER, frozenset(perms), "server.ini")


def host_identity(keyspace: keys.KeySpace, host: str) -> Identity:
    """Host ``host``'s: reads its bindings and every group, writes its own reports only.

    Its reports are read back too (the reporter resumes from what it wrote before).
    """
    perms = {
        Perm.prefix("READ", keyspace.host_prefix(host)),
        Perm.prefix("READ", keyspace.global_prefix()),
        Perm.prefix("READWRITE", keyspace.host_state_prefix(host)),
    }
    return Identity(host_user(host), frozenset(perms), f"host-{host}.ini")


# --- the snippets ---------------------------------------------------------------------
def write_identity(path: Path, username: str, password: str) -> None:
    """Write an ``[etcd]`` snippet readable by its owner only (whatever the umask)."""
    text = (
        "# etcd identity for networking-vpp, written by 'networking-vpp etcd-setup'.\n"
        "# Give it to the process as one more --config-file. Keep it secret.\n"
        f"[etcd]\nusername = {username}\npassword = {password}\n"
    )
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is only for a new file
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)  # a reader never sees half a snippet


def read_identity(path: Path | str) -> tuple[str, str]:
    """``(username, password)`` of an ``[etcd]`` snippet."""
    parser = configparser.ConfigParser(interpolation=None)
    with open(path) as f:
        parser.read_file(f)
    section = parser["etcd"]
    return section["username"], section["password"]


def _known_password(path: Path, user: str) -> str | None:
    """The password a snippet holds for ``user`` (None: no such snippet)."""
    if not path.exists():
        return None
    name, password = read_identity(path)
    if name != user:
        raise SetupError(f"{path} is for user {name!r}, not {user!r}")
    return password


def new_password() -> str:
    """A random password (URL-safe: no character oslo.config would interpolate)."""
    return secrets.token_urlsafe(24)


class SetupError(Exception):
    """Something the operator must fix before the setup can go on."""


# --- etcd's auth API through the gateway ----------------------------------------------
class AuthAdmin:
    """The calls of etcd's v3 auth API this tool uses (``/v3/auth/...``)."""

    def __init__(self, client: EtcdClient) -> None:
        self.client = client

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # Not idempotent in etcd's eyes (an add that was applied fails when retried),
        # but every call here is re-checked by the next run: retrying is harmless.
        return self.client.transport.post(f"auth/{path}", body)

    def users(self) -> list[str]:
        return sorted(self._post("user/list", {}).get("users") or [])

    def roles(self) -> list[str]:
        return sorted(self._post("role/list", {}).get("roles") or [])

    def user_roles(self, user: str) -> list[str]:
        return sorted(self._post("user/get", {"name": user}).get("roles") or [])

    def role_perms(self, role: str) -> set[Perm]:
        perms = self._post("role/get", {"role": role}).get("perm") or []
        # permType is left out when it is READ, the enum's zero (proto3 JSON).
        return {
            Perm(
                str(p.get("permType") or "READ"),
                codec.unb64(p.get("key")),
                codec.unb64(p.get("range_end")),
            )
            for p in perms
        }

    def add_user(self, user: str, password: str) -> None:
        self._post("user/add", {"name": user, "password": password})

    def change_password(self, user: str, password: str) -> None:
        self._post("user/changepw", {"name": user, "password": password})

    def add_role(self, role: str) -> None:
        self._post("role/add", {"name": role})

    def grant_perm(self, role: str, perm: Perm) -> None:
        body = {"permType": perm.perm_type, "key": codec.b64(perm.key)}
        if perm.range_end:
            body["range_end"] = codec.b64(perm.range_end)
        self._post("role/grant", {"name": role, "perm": body})

    def revoke_perm(self, role: str, perm: Perm) -> None:
        body = {"role": role, "key": codec.b64(perm.key)}
        if perm.range_end:
            body["range_end"] = codec.b64(perm.range_end)
        self._post("role/revoke", body)

    def grant_role(self, user: str, role: str) -> None:
        self._post("user/grant", {"user": user, "role": role})

    def revoke_role(self, user: str, role: str) -> None:
        self._post("user/revoke", {"name": user, "role": role})

    def enable(self) -> None:
        self._post("enable", {})


def auth_enabled(settings: EtcdSettings) -> bool:
    """Whether etcd has auth on: without it, anyone may list the users."""
    anonymous = EtcdClient(dataclasses.replace(settings, username=None, password=None))
    try:
        AuthAdmin(anonymous).users()
    except EtcdAuthError:
        return True
    finally:
        anonymous.close()
    return False


def password_works(settings: EtcdSettings, user: str, password: str) -> bool:
    """Whether etcd takes ``user``'s ``password`` (auth must be on)."""
    probe = EtcdClient(dataclasses.replace(settings, username=user, password=password))
    try:
        probe.transport.post("auth/authenticate", {"name": user, "password": password})
    except EtcdAuthError:
        return False
    finally:
        probe.close()
    return True


# --- the plan ---------------------------------------------------------------------------
@dataclasses.dataclass
class Plan:
    """What a run changes, in order; each step says what it does without a secret."""

    steps: list[tuple[str, Callable[[], None]]] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    def add(self, what: str, action: Callable[[], None]) -> None:
        self.steps.append((what, action))


class Setup:
    """Compares etcd's users and roles with the identities and plans the difference."""

    def __init__(
        self,
        settings: EtcdSettings,
        keyspace: keys.KeySpace,
        output: Path,
        reset_passwords: bool = False,
    ) -> None:
        self.settings = settings
        self.keyspace = keyspace
        self.output = output
        self.reset_passwords = reset_passwords
        self.enabled = auth_enabled(settings)
        self.root_password = self._root_password()
        if self.enabled and self.root_password is None:
            raise SetupError(
                f"etcd has auth on: put root's password in {output / 'root.ini'} "
                "(an [etcd] snippet, username = root)"
            )
        admin_settings = dataclasses.replace(
            settings,
            username=ROOT if self.enabled else None,
            password=self.root_password if self.enabled else None,
        )
        self.client = EtcdClient(admin_settings)
        self.admin = AuthAdmin(self.client)

    def close(self) -> None:
        self.client.close()

    def _root_password(self) -> str | None:
        known = _known_password(self.output / "root.ini", ROOT)
        if known is not None:
            return known
        if self.settings.username == ROOT:  # the configuration's own [etcd] credentials
            return self.settings.password
        return None

    def seen_hosts(self) -> set[str]:
        """Hosts whose agents have reported (any key below ``/state/<host>/``)."""
        kvs, _ = self.client.get_prefix(self.keyspace.state_prefix())
        hosts = set()
        for kv in kvs:
            try:
                hosts.add(self.keyspace.parse_state(kv.key).host)
            except keys.BadKey:
                continue  # not ours to name a host
        return hosts

    def identities(self, hosts: Iterable[str]) -> list[Identity]:
        """The server's, then one per host: those asked for and those made before."""
        made = {
            user[len(HOST_USER_PREFIX) :]
            for user in self.admin.users()
            if user.startswith(HOST_USER_PREFIX) and "/" not in user
        }
        made.discard("")
        return [server_identity(self.keyspace)] + [
            host_identity(self.keyspace, h) for h in sorted(set(hosts) | made)
        ]

    def plan(self, identities: list[Identity]) -> Plan:
        """Every change that makes etcd hold exactly these identities, and auth on."""
        plan = Plan()
        users, roles = set(self.admin.users()), set(self.admin.roles())
        self._plan_root(plan, users, roles)
        for identity in identities:
            self._plan_identity(plan, identity, users, roles)
        if not self.enabled and not plan.problems:
            # Last: once on, only root (whose password the snippet holds) administers.
            plan.add("enable auth", self.admin.enable)
        return plan

    def _plan_root(self, plan: Plan, users: set[str], roles: set[str]) -> None:
        if self.enabled:
            return  # we are root already: etcd took the password
        if ROOT not in users:
            password = self.root_password or new_password()
            path = self.output / "root.ini"
            if self.root_password is None:
                plan.add(f"write {path}", lambda: write_identity(path, ROOT, password))
            plan.add("add user root", lambda: self.admin.add_user(ROOT, password))
        elif self.root_password is None:
            plan.problems.append(
                f"user root exists and its password is not known here: put it in {self.output}"
                "/root.ini (an [etcd] snippet, username = root), or auth could not be used"
            )
        if ROOT not in roles:
            plan.add("add role root", lambda: self.admin.add_role(ROOT))
        if ROOT not in users or ROOT not in self.admin.user_roles(ROOT):
            plan.add("grant role root to user root", lambda: self.admin.grant_role(ROOT, ROOT))

    def _plan_identity(
        self, plan: Plan, identity: Identity, users: set[str], roles: set[str]
    ) -> None:
        name, path = identity.name, self.output / identity.snippet
        known = _known_password(path, name)
        if name not in users:
            password = known or new_password()
            if known is None:
                plan.add(f"write {path}", lambda: write_identity(path, name, password))
            plan.add(f"add user {name}", lambda: self.admin.add_user(name, password))
        elif self.reset_passwords:
            password = new_password() if known is None else known
            if known is None:
                plan.add(f"write {path}", lambda: write_identity(path, name, password))
            plan.add(
                f"set the password of {name}", lambda: self.admin.change_password(name, password)
            )
        elif known is None:
            plan.problems.append(
                f"user {name} exists but {path} does not: its password is unknown here "
                "(--reset-passwords sets a new one)"
            )
        elif self.enabled and not password_works(self.settings, name, known):
            plan.problems.append(
                f"{path} does not hold {name}'s password (--reset-passwords sets etcd's to it)"
            )
        granted: set[Perm] = set()
        if name not in roles:
            plan.add(f"add role {name}", lambda: self.admin.add_role(name))
        else:
            granted = self.admin.role_perms(name)
        for perm in sorted(identity.perms - granted):
            plan.add(
                f"grant {perm.describe()} to role {name}",
                lambda p=perm: self.admin.grant_perm(name, p),  # type: ignore[misc]
            )
        for perm in sorted(granted - identity.perms):
            plan.add(
                f"revoke {perm.describe()} from role {name}",
                lambda p=perm: self.admin.revoke_perm(name, p),  # type: ignore[misc]
            )
        has = set(self.admin.user_roles(name)) if name in users else set()
        if name not in has:
            plan.add(f"grant role {name} to user {name}", lambda: self.admin.grant_role(name, name))
        for other in sorted(has - {name}):
            plan.add(
                f"revoke role {other} from user {name}",
                lambda r=other: self.admin.revoke_role(name, r),  # type: ignore[misc]
            )


def ensure(
    settings: EtcdSettings, keyspace: keys.KeySpace, output: Path, hosts: Iterable[str]
) -> list[str]:
    """Set up (or check) the identities as the command does, for rigs; the steps taken.

    Raises :class:`SetupError` for anything the command would report as a problem.
    """
    setup = Setup(settings, keyspace, output)
    try:
        plan = setup.plan(setup.identities(hosts))
        if plan.problems:
            raise SetupError("; ".join(plan.problems))
        output.mkdir(parents=True, exist_ok=True)
        output.chmod(0o700)
        for _, action in plan.steps:
            action()
        return [what for what, _ in plan.steps]
    finally:
        setup.close()


# --- the command ------------------------------------------------------------------------
def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the command."""
    parser = sub.add_parser(
        "etcd-setup",
        help="turn etcd auth on with a server identity and one identity per host",
        description="Make etcd users and roles: the server's (writes /nodes/, /global/, "
        "/election/ and /kick/, reads the rest) and one per host (reads /nodes/<host>/ and "
        "/global/, writes /state/<host>/ only), then turn auth on. Passwords go into "
        "[etcd] snippets in --output (root.ini, server.ini, host-<host>.ini), never to the "
        "terminal. Runs again safely: it adds new hosts and repairs permissions that "
        "drifted. Exit status: 0 done (or, with --dry-run, nothing to do); 1 --dry-run "
        "would change something, or a password is unknown or wrong; 2 could not run.",
    )
    conf.add_arguments(parser)
    parser.add_argument(
        "--output",
        required=True,
        type=Path,
        metavar="DIR",
        help="directory of the identities' [etcd] snippets; a snippet already there gives "
        "that identity's password (root.ini: root's, needed once auth is on)",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="HOST[,HOST...]",
        help="a host to make an identity for (repeatable; as Nova names it)",
    )
    parser.add_argument(
        "--seen",
        action="store_true",
        help="also every host whose agent already reports under /state/",
    )
    parser.add_argument(
        "--reset-passwords",
        action="store_true",
        help="set each existing user's password to its snippet's (a new one if none)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would change; change nothing"
    )
    parser.set_defaults(run=run)


def load(args: argparse.Namespace) -> tuple[EtcdSettings, keys.KeySpace]:
    """Connection settings and key space from the files and flags."""
    options = cfg.ConfigOpts()
    config.register_etcd_opts(options)
    options(args=conf.oslo_args(args), project="networking-vpp", prog="networking-vpp")
    conf.apply_overrides(options, args)
    return EtcdSettings.from_conf(options), keys.KeySpace(options[config.ETCD_GROUP].prefix)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Plan, print, and (unless ``--dry-run``) apply."""
    out = out or sys.stdout  # looked up now: a test may have replaced them
    err = err or sys.stderr
    settings, keyspace = load(args)
    hosts = {h.strip() for item in args.host for h in item.split(",") if h.strip()}
    try:
        setup = Setup(settings, keyspace, args.output, args.reset_passwords)
    except SetupError as exc:
        print(f"networking-vpp etcd-setup: {exc}", file=err)
        return 1
    try:
        if args.seen:
            hosts |= setup.seen_hosts()
        try:
            plan = setup.plan(setup.identities(hosts))
        except (SetupError, keys.BadKey) as exc:
            print(f"networking-vpp etcd-setup: {exc}", file=err)
            return 1
        for problem in plan.problems:
            print(f"networking-vpp etcd-setup: {problem}", file=err)
        if not plan.steps:
            out.write("etcd-setup: no change\n")
            return 1 if plan.problems else 0
        if args.dry_run:
            out.writelines(f"would {what}\n" for what, _ in plan.steps)
            return 1
        if not args.output.exists():
            args.output.mkdir(parents=True)
            args.output.chmod(0o700)  # mkdir's mode is filtered by the umask
        for what, action in plan.steps:
            try:
                action()
            except EtcdError as exc:
                print(f"networking-vpp etcd-setup: {what}: {exc}", file=err)
                return 2
            out.write(f"{what}\n")
        out.write(f"etcd-setup: {len(plan.steps)} changes\n")
        return 1 if plan.problems else 0
    finally:
        setup.close()

"""Bind latency on the dev cloud: port create with a host -> ACTIVE, and our control plane's part.

    python benchmarks/bind_latency.py [--ports 200] [--base .devcloud] [--json out.json]

Without ``--base`` a private dev cloud is started in a temporary directory (about 25 s)
and stopped at the end; with it, the running cloud there is used.

Ports are created one at a time (latency, not throughput), alternating between the
two hosts, on one VLAN network, as Nova binds them. For every port these instants are
taken, all on this machine's wall clock:

    a  POST /v2.0/ports sent                                   (this script)
    b  POST answered                                           (this script)
    j  journal row inserted, inside Neutron's bind transaction (DB trigger, SYSDATE(6))
    c  binding key put in etcd, seen by a watch                (this script's etcd watch)
    r  agent's report stamped (the state value's reported_at)  (agent)
    s  state key put in etcd, seen by a watch                  (this script's etcd watch)
    p  provisioning_complete: our block removed from the DB    (DB trigger, SYSDATE(6))
    g  port status set to ACTIVE in Neutron's database         (DB trigger, SYSDATE(6))
    n  network-vif-plugged arrived at Nova                     (fake Nova)

Our control plane's part is p - j: journal row -> forwarder -> etcd -> agent -> VPP ->
report -> state watcher -> provisioning_complete. It slightly overstates our part: the
journal row is written before Neutron's own transaction commits. The split:

* forwarder j->c: the rest of Neutron's bind transaction and its commit, the
  postcommit kick (in-process, or through etcd when the other API worker leads),
  reading the rows, the etcd transaction;
* agent c->r: watch event, reconcile, VPP calls (the fake host's "VM" attaches the
  moment VPP makes the vhost-user socket), report stamped;
* report r->s: the agent's batched report write;
* state watcher s->p: watch event, lookup of the current binding, provisioning_complete.

After p, ML2 itself moves the port to ACTIVE (``Ml2Plugin._port_provisioned``: reload
the port, check the blocks, ``update_port_status``), p->g: Neutron's work, the same for
every ML2 driver, shown apart. End to end is a->g. Nova's arrival (n) is shown apart too:
Neutron batches Nova events (send_events_interval, at least 1 s), so back-to-back ports
wait for the batch.

The three DB triggers (AFTER INSERT on vpp_journal, AFTER DELETE on provisioningblocks,
AFTER UPDATE on ports) write into a scratch table; the script creates them at start and
drops them (and the table) at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from networking_vpp.common import keys as k
from networking_vpp.common import model
from networking_vpp.common.etcd.watcher import Event, PrefixWatcher
from networking_vpp.server.mech_driver import PROVISIONING_ENTITY
from networking_vpp.testing.devcloud import mariadb, procs
from networking_vpp.testing.devcloud.client import VIF_PLUGGED, CloudClient
from networking_vpp.testing.devcloud.cloud import DevCloud, missing_prerequisites

KEYS = k.KeySpace()
T = TypeVar("T")
TIMES_TABLE = "bench_bind_times"
TRIGGERS = {
    "bench_journal_insert": (
        "AFTER INSERT ON vpp_journal FOR EACH ROW "
        f"INSERT INTO {TIMES_TABLE} (what, ident, at) "
        "VALUES ('journal', NEW.`key`, UNIX_TIMESTAMP(SYSDATE(6)))"
    ),
    "bench_unblocked": (
        "AFTER DELETE ON provisioningblocks FOR EACH ROW "
        f"IF OLD.entity = '{PROVISIONING_ENTITY}' THEN "
        f"INSERT INTO {TIMES_TABLE} (what, ident, at) "
        "VALUES ('unblocked', OLD.standard_attr_id, UNIX_TIMESTAMP(SYSDATE(6))); END IF"
    ),
    "bench_port_active": (
        "AFTER UPDATE ON ports FOR EACH ROW "
        "IF NEW.status = 'ACTIVE' AND OLD.status <> 'ACTIVE' THEN "
        f"INSERT INTO {TIMES_TABLE} (what, ident, at) "
        "VALUES ('active', NEW.id, UNIX_TIMESTAMP(SYSDATE(6))); END IF"
    ),
}


@contextlib.contextmanager
def db_timestamps(cloud: DevCloud) -> Iterator[Any]:
    """Install the timing triggers; yields a root connection to read them."""
    conn = mariadb.connect(cloud.layout, database=mariadb.DB_NAME)
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {TIMES_TABLE} "
            "(what VARCHAR(16), ident VARCHAR(1024), at DECIMAL(17,6))"
        )
        for name, body in TRIGGERS.items():
            cur.execute(f"DROP TRIGGER IF EXISTS {name}")
            cur.execute(f"CREATE TRIGGER {name} {body}")
    try:
        yield conn
    finally:
        with conn.cursor() as cur:
            for name in TRIGGERS:
                cur.execute(f"DROP TRIGGER IF EXISTS {name}")
            cur.execute(f"DROP TABLE IF EXISTS {TIMES_TABLE}")
        conn.close()


class PutTimes:
    """Arrival time and revision of the first put of every key, seen through an etcd watch."""

    def __init__(self, client: CloudClient) -> None:
        self.seen: dict[str, tuple[float, int, bytes]] = {}
        self._lock = threading.Lock()
        self._watcher = PrefixWatcher(
            client.etcd, KEYS.prefix + "/", self._load, self._events, name="bench-watch"
        )

    def _load(self, snapshot: dict[str, bytes], revision: int) -> None:
        pass  # only what happens from now on matters

    def _events(self, events: list[Event]) -> None:
        now = time.time()
        with self._lock:
            for e in events:
                if e.kind == "put" and e.key not in self.seen:
                    self.seen[e.key] = (now, e.mod_revision, e.value or b"")

    def get(self, key: str) -> tuple[float, int, bytes] | None:
        with self._lock:
            return self.seen.get(key)

    def __enter__(self) -> PutTimes:
        self._watcher.start()
        if not self._watcher.wait_loaded(10):
            raise RuntimeError("etcd watch did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._watcher.stop()


def wait_active(db: Any, port_id: str, timeout: float = 30.0) -> None:
    """Poll the ports table (no load on the API workers).

    Only paces the loop: the instant of ACTIVE comes from the trigger, so a
    coarse poll costs no precision and keeps the database quiet.
    """

    def active() -> bool:
        with db.cursor() as cur:
            cur.execute("SELECT status FROM ports WHERE id = %s", (port_id,))
            row = cur.fetchone()
        return bool(row) and row[0] == "ACTIVE"

    procs.wait_until(active, timeout, f"port {port_id} ACTIVE", interval=0.01)


def run(cloud: DevCloud, count: int, warmup: int) -> list[dict[str, Any]]:
    """Create ``warmup`` + ``count`` ports; return the timings of the last ``count``."""
    client = CloudClient(cloud)
    net = client.neutron.network
    network = net.create_network(
        name=f"bench-{uuid.uuid4().hex[:6]}",
        provider_network_type="vlan",
        provider_physical_network="physnet1",
    )
    net.create_subnet(network_id=network.id, cidr="10.99.0.0/16", ip_version=4)
    made: list[tuple[Any, str, float, float]] = []
    try:
        with db_timestamps(cloud) as db, PutTimes(client) as puts:
            for i in range(warmup + count):
                host = cloud.hosts[i % len(cloud.hosts)]
                a = time.time()
                port = net.create_port(
                    network_id=network.id,
                    binding_host_id=host,
                    device_owner="compute:nova",
                    device_id=str(uuid.uuid4()),
                )
                b = time.time()
                wait_active(db, port.id)
                if i >= warmup:
                    made.append((port, host, a, b))
                if (i + 1) % 50 == 0:
                    print(f"  {i + 1 - warmup} ports", file=sys.stderr)
            procs.wait_until(
                lambda: len(client.nova_events(VIF_PLUGGED)) >= warmup + count,
                30,
                "every vif-plugged event at the fake Nova",
            )
            with db.cursor() as cur:
                cur.execute(f"SELECT what, ident, at FROM {TIMES_TABLE}")
                db_times = [(w, i, float(t)) for w, i, t in cur.fetchall()]
                # Provisioning blocks name the port by its standard attribute id.
                cur.execute("SELECT standard_attr_id, id FROM ports")
                port_of = {str(attr): port_id for attr, port_id in cur.fetchall()}
            db_times = [
                (w, port_of.get(i, i) if w == "unblocked" else i, t) for w, i, t in db_times
            ]
            return collect(client, cloud, made, db_times, puts)
    finally:
        for port in net.ports(network_id=network.id):
            net.delete_port(port)
        net.delete_network(network)
        client.close()


def collect(
    client: CloudClient,
    cloud: DevCloud,
    made: list[tuple[Any, str, float, float]],
    db_times: list[tuple[str, str, float]],
    puts: PutTimes,
) -> list[dict[str, Any]]:
    """One dict of instants per port (see the module docstring for the letters)."""
    first: dict[tuple[str, str], float] = {}
    for what, ident, at in db_times:
        first.setdefault((what, ident), at)
    nova = {e["tag"]: e["received_at"] for e in client.nova_events(VIF_PLUGGED)}
    rows = []
    for port, host, a, b in made:
        bind_key, state_key = KEYS.port(host, port.id), KEYS.port_state(host, port.id)
        bound, state = puts.get(bind_key), puts.get(state_key)
        if bound is None or state is None:
            raise RuntimeError(f"port {port.id}: etcd watch missed its keys")
        report = model.decode(model.PortState, state_key, state[2])
        rows.append(
            dict(
                port=port.id,
                host=host,
                a=a,
                b=b,
                j=first[("journal", bind_key)],
                c=bound[0],
                c_rev=bound[1],
                r=report.reported_at,
                s=state[0],
                s_rev=state[1],
                p=first[("unblocked", port.id)],
                g=first[("active", port.id)],
                n=nova.get(port.id, float("nan")),
            )
        )
    return rows


SPANS = [
    ("end to end: POST sent -> ACTIVE", "a", "g"),
    ("  POST sent -> answered", "a", "b"),
    ("our part: journal row -> provisioning_complete", "j", "p"),
    ("  forwarder: journal row -> etcd", "j", "c"),
    ("  agent: etcd -> report stamped", "c", "r"),
    ("  report -> state key in etcd", "r", "s"),
    ("  state key -> provisioning_complete", "s", "p"),
    ("ML2: provisioning_complete -> ACTIVE", "p", "g"),
    ("Nova told, after ACTIVE (batched)", "g", "n"),
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def report(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Print p50/p90/p99/max of every span; return them."""
    figures = {}
    print(f"\nbind latency over {len(rows)} ports (ms)")
    print(f"  {'span':46} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    for label, start, end in SPANS:
        values = [(r[end] - r[start]) * 1000 for r in rows if r[end] == r[end]]  # drop NaN
        if not values:
            continue
        stats = {
            "p50": statistics.median(values),
            "p90": percentile(values, 90),
            "p99": percentile(values, 99),
            "max": max(values),
        }
        figures[label.strip()] = stats
        print(
            f"  {label:46} {stats['p50']:7.1f} {stats['p90']:7.1f} "
            f"{stats['p99']:7.1f} {stats['max']:7.1f}"
        )
    ours = figures["our part: journal row -> provisioning_complete"]["p99"]
    verdict = "met" if ours < 100 else "MISSED"
    print(f"\n  target: our part p99 < 100 ms: {verdict} ({ours:.1f} ms)")
    return figures


def on_a_cloud(base: Path | None, prefix: str, work: Callable[[DevCloud], T]) -> T | None:
    """``work`` on the dev cloud running in ``base``, or on a private one started and
    stopped around it (its logs kept if it fails); None if this machine cannot run one."""
    if base:
        return work(DevCloud(base))
    missing = missing_prerequisites()
    if missing:
        print("missing: " + ", ".join(missing), file=sys.stderr)
        return None
    cloud = DevCloud(Path(tempfile.mkdtemp(prefix=prefix)), tied=True)
    print("starting a dev cloud ...", file=sys.stderr)
    try:
        cloud.up()
        result = work(cloud)
    except BaseException:
        print(f"failed; logs kept in {cloud.layout.logs}", file=sys.stderr)
        raise
    finally:
        cloud.down()
    shutil.rmtree(cloud.layout.base)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ports", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--base", type=Path, help="use the dev cloud running there")
    parser.add_argument("--json", type=Path, help="write the per-port instants here")
    args = parser.parse_args()
    rows = on_a_cloud(args.base, "bind-latency-", lambda c: run(c, args.ports, args.warmup))
    if rows is None:
        return 2
    report(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

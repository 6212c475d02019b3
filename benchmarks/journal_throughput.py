"""Journal rows drained into etcd per second: batched vs one row per request vs raw puts.

    python benchmarks/journal_throughput.py [--rows 20000] [--single-rows 1000] [--puts 1000]

All three run in one process against the same fresh etcd (testing rig) and an
SQLite journal file:

1. batched: the forwarder as deployed (batches of ``--batch-size`` rows, etcd
   transactions of up to 128 operations, rows deleted after each batch);
2. one row per request: the same forwarder with ``batch_size=1`` (one row read,
   one one-operation transaction, one row deleted);
3. raw puts: ``EtcdClient.put`` in a loop, no database at all.

Every row is a distinct key with a realistic PortBinding value (no dedup help).
The clock covers the drain only: rows are in the journal and the forwarder is
already elected when it starts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from networking_vpp.common import keys, model
from networking_vpp.common.etcd.client import EtcdClient
from networking_vpp.server.journal.forwarder import Forwarder
from networking_vpp.testing.etcd import EtcdServer
from networking_vpp.testing.journal import JournalDb

K = keys.KeySpace()


def value(i: int) -> str:
    """A port binding value like the driver writes (about 600 bytes)."""
    return model.encode(
        model.PortBinding(
            port_id=f"{i:08d}-0000-4000-8000-000000000000",
            binding_id=f"{i:08d}-1111-4000-8000-000000000000",
            network_id="5e0c2b1a-0000-4000-8000-000000000000",
            mac_address=f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
            mtu=1500,
            network_type="vlan",
            physnet="physnet1",
            segmentation_id=100 + i % 1000,
            binding_type="vhostuser",
            vhostuser=model.VhostUser(socket=f"/run/vpp/vhostuser/vhu{i:011d}"),
            fixed_ips=(model.FixedIp(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "sub"),),
            security_groups=("9a3c1f00-0000-4000-8000-000000000000",),
            device_owner="compute:nova",
            device_id="0b8e6a3c-5f42-4c5e-9d1f-bbbbbbbbbbbb",
        )
    )


def fill(db: JournalDb, first: int, count: int) -> None:
    """Write ``count`` rows with distinct keys, 500 per transaction."""
    for start in range(first, first + count, 500):
        end = min(start + 500, first + count)
        db.write(
            (K.port(f"compute-{i % 50}", f"port-{i:08d}"), value(i)) for i in range(start, end)
        )


def drain_rate(server: EtcdServer, db: JournalDb, rows: int, batch_size: int) -> float:
    """Rows per second for one forwarder draining ``rows`` rows."""
    fw = Forwarder(
        db.store,
        EtcdClient(server.settings()),
        K,
        identity=f"bench-{batch_size}",
        batch_size=batch_size,
        election_ttl=10,
    )
    fw.election.start()  # elected, but no drain thread: we drain in this thread, timed
    try:
        if not fw.election.wait_leader(15):
            raise RuntimeError("forwarder was not elected")
        started = time.perf_counter()
        while fw.drain_once():
            pass
        elapsed = time.perf_counter() - started
    finally:
        fw.election.stop()
    if fw.rows_forwarded != rows or db.store.pending():
        raise RuntimeError(f"forwarded {fw.rows_forwarded} of {rows} rows")
    return rows / elapsed


def raw_put_rate(client: EtcdClient, count: int) -> float:
    """Sequential ``EtcdClient.put`` calls per second."""
    started = time.perf_counter()
    for i in range(count):
        client.put(K.port("raw", f"port-{i:08d}"), value(i))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20000, help="rows for the batched run")
    parser.add_argument("--single-rows", type=int, default=1000, help="rows, one per request")
    parser.add_argument("--puts", type=int, default=1000, help="raw etcd puts")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nvpp-journal-bench-") as tmp, EtcdServer() as server:
        db = JournalDb(os.path.join(tmp, "journal.sqlite"))
        client = EtcdClient(server.settings())

        fill(db, 0, args.rows)
        batched = drain_rate(server, db, args.rows, args.batch_size)
        fill(db, args.rows, args.single_rows)
        single = drain_rate(server, db, args.single_rows, 1)
        raw = raw_put_rate(client, args.puts)
        stored, _ = client.get_prefix(K.nodes_prefix())
        assert len(stored) == args.rows + args.single_rows + args.puts

    print(
        f"batched forwarder    : {batched:9.0f} rows/s  ({args.rows} rows, "
        f"batches of {args.batch_size}, <=128 ops per etcd txn)"
    )
    print(f"one row per request  : {single:9.0f} rows/s  ({args.single_rows} rows)")
    print(f"raw etcd client puts : {raw:9.0f} puts/s  ({args.puts} puts)")
    print(
        f"batched / one-per-request = {batched / single:.1f}x; "
        f"batched / raw puts = {batched / raw:.1f}x"
    )
    ok = batched >= 5000 and batched >= 3 * single
    print("target (>= 5000 rows/s and >= 3x one-per-request):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()

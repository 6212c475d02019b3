"""Write throughput to a real etcd: raw etcd3gw puts vs our client's puts vs write_batch.

    python benchmarks/etcd_puts.py [--n 3000] [--value-size 200] [--endpoint URL]

Without --endpoint a private etcd is started (networking_vpp.testing.etcd). Each run writes
N distinct keys with values of --value-size bytes; the prefix is wiped before each run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from networking_vpp.common.etcd.client import EtcdClient, EtcdSettings
from networking_vpp.common.etcd.writer import Put, write_batch
from networking_vpp.testing.etcd import EtcdServer

PREFIX = "/bench/puts/"


def timed(client: EtcdClient, n: int, run: Callable[[], None]) -> float:
    """ops/s of ``run`` (which writes n keys), checked against the store."""
    client.delete_prefix(PREFIX)
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    count = len(client.get_prefix(PREFIX)[0])
    assert count == n, f"expected {n} keys, found {count}"
    return n / elapsed


def bench(endpoint: str, n: int, value_size: int) -> None:
    """Print ops/s for each way of writing."""
    client = EtcdClient(EtcdSettings(endpoints=[endpoint]))
    value = "v" * value_size
    keys = [f"{PREFIX}{i:08d}" for i in range(n)]
    gateway = client.gateway()  # etcd3gw on our session (trust_env off)

    def raw_etcd3gw() -> None:
        for key in keys:
            gateway.put(key, value)

    def our_puts() -> None:
        for key in keys:
            client.put(key, value)

    def batched() -> None:
        write_batch(client, [Put(key, value) for key in keys])

    for name, run in (
        ("etcd3gw put", raw_etcd3gw),
        ("client.put", our_puts),
        ("write_batch", batched),
    ):
        print(f"{name:>12}: {timed(client, n, run):8.0f} ops/s  ({n} keys, {value_size} B)")
    client.delete_prefix(PREFIX)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--value-size", type=int, default=200)
    parser.add_argument("--endpoint", help="an existing etcd (default: start a private one)")
    args = parser.parse_args()
    if args.endpoint:
        bench(args.endpoint, args.n, args.value_size)
        return
    with EtcdServer() as server:
        bench(server.endpoint, args.n, args.value_size)


if __name__ == "__main__":
    main()

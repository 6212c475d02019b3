"""Namespace VM on a dev cloud with Neutron's agents: port create -> DHCP lease.

    python benchmarks/vm_dhcp_latency.py --base .devcloud [--vms 5]

One VM at a time (``networking_vpp.testing.devcloud.vms.VM``) on compute-3 (tap
vifs) on one VLAN network served by the DHCP agent on compute-1: the time from
the port's POST to the lease udhcpc gets (the bind, the journal, the agent's
af_packet attach, the DHCP agent's host entry, and the DISCOVER/OFFER/REQUEST/ACK
exchange through compute-3's VPP, the wire and compute-1's VPP; udhcpc asks
again every ``vms.RETRY`` seconds, so a lost first DISCOVER costs that much).
The network is made ready first (its DHCP port ACTIVE), as a user's would be.
Everything made here is deleted at the end. Needs root and udhcpc.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from networking_vpp.testing.devcloud import procs
from networking_vpp.testing.devcloud.client import CloudClient
from networking_vpp.testing.devcloud.cloud import DevCloud
from networking_vpp.testing.devcloud.vms import VM


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="a running dev cloud")
    parser.add_argument("--vms", type=int, default=5)
    args = parser.parse_args()
    cloud = DevCloud(args.base)
    if not cloud.ports.neutron_agents:
        print("the dev cloud there runs without Neutron's agents", file=sys.stderr)
        return 1
    client = CloudClient(cloud)
    neutron = client.neutron.network
    net = neutron.create_network(
        name="bench-vms", provider_network_type="vlan", provider_physical_network="physnet1"
    )
    try:
        neutron.create_subnet(network_id=net.id, cidr="10.85.0.0/24", ip_version=4)

        def dhcp_port():  # noqa: ANN202
            found = list(neutron.ports(network_id=net.id, device_owner="network:dhcp"))
            return found[0] if found else None

        port = procs.wait_until(dhcp_port, 90.0, "the DHCP agent's port", interval=0.2)
        client.wait_port(port.id, "ACTIVE", timeout=90)
        times = []
        for i in range(args.vms):
            with VM(neutron, net.id, f"bench{i}") as vm:
                vm.dhcp(timeout=60)
                assert vm.leased_at is not None
                times.append(vm.leased_at - vm.created_at)
                print(f"vm {i}: lease {vm.ip} {times[-1]:.2f} s after the port's POST")
        p50 = statistics.median(times)
        print(
            f"port create -> DHCP lease over {len(times)} VMs: p50 {p50:.2f} s,"
            f" min {min(times):.2f} s, max {max(times):.2f} s"
        )
    finally:
        for port in neutron.ports(network_id=net.id, device_owner="compute:nova"):
            neutron.delete_port(port.id, ignore_missing=True)
        neutron.delete_network(net.id, ignore_missing=True)
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

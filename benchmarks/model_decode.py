"""Cost of decoding one port binding value (what an agent pays per port, per load).

    python benchmarks/model_decode.py [--n 20000] [--repeat 5]

The binding is a realistic one: vhost-user, VLAN, 2 fixed IPs, 3 security
groups, 2 allowed address pairs. Prints the best of ``--repeat`` runs of
``--n`` decodes, in µs per decode, and the encode cost for reference.
"""

from __future__ import annotations

import argparse
import time

from networking_vpp.common import model

PORT_ID = "3f2a9c1e-7b4d-4e21-9a6f-0c8d5e7b1a24"


def realistic_binding() -> model.PortBinding:
    """A binding as the server writes it for an ordinary VM port."""
    return model.PortBinding(
        port_id=PORT_ID,
        binding_id="b7c1d2e3-f405-4a61-8b72-93c4d5e6f708",
        network_id="9e8d7c6b-5a49-4382-a170-f6e5d4c3b2a1",
        mac_address="fa:16:3e:4d:2a:91",
        mtu=1450,
        network_type="vlan",
        physnet="physnet1",
        segmentation_id=1203,
        binding_type="vhostuser",
        vhostuser=model.VhostUser(socket="/run/vpp/vhostuser/vhu" + PORT_ID[:11]),
        fixed_ips=(
            model.FixedIp("10.20.30.41", "5b6c7d8e-9fa0-4b1c-8d2e-3f4a5b6c7d8e"),
            model.FixedIp("2001:db8:20:30::29", "6c7d8e9f-a0b1-4c2d-9e3f-4a5b6c7d8e9f"),
        ),
        security_groups=(
            "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e",
            "2c3d4e5f-6a7b-4c8d-ae9f-1a2b3c4d5e6f",
        ),
        allowed_address_pairs=(
            model.AddressPair("10.20.30.200/32", "fa:16:3e:00:aa:01"),
            model.AddressPair("10.20.31.0/24"),
        ),
        device_owner="compute:nova",
        device_id="4d5e6f7a-8b9c-4dae-bf01-23456789abcd",
    )


def per_call_us(fn: object, n: int, repeat: int) -> float:
    """Best of ``repeat`` runs of ``n`` calls of ``fn``, in µs per call."""
    assert callable(fn)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - started)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    value = realistic_binding()
    raw = model.encode(value).encode()
    key = "/networking-vpp/nodes/compute-1/ports/" + PORT_ID
    assert model.decode(model.PortBinding, key, raw) == value
    decode = per_call_us(lambda: model.decode(model.PortBinding, key, raw), args.n, args.repeat)
    encode = per_call_us(lambda: model.encode(value), args.n, args.repeat)
    print(f"value: {len(raw)} bytes")
    print(f"decode: {decode:.2f} µs per PortBinding")
    print(f"encode: {encode:.2f} µs per PortBinding")


if __name__ == "__main__":
    main()

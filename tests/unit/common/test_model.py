import json

import pytest

from networking_vpp.common import model as m


def binding(**over):
    fields = dict(
        port_id="p1",
        binding_id="b1",
        network_id="n1",
        mac_address="fa:16:3e:00:00:01",
        mtu=1500,
        network_type="vlan",
        physnet="physnet1",
        segmentation_id=100,
        binding_type="vhostuser",
        vhostuser=m.VhostUser("/run/vpp/vhu1"),
        fixed_ips=(m.FixedIp("10.0.0.3", "s1"), m.FixedIp("2001:db8::3", "s2")),
        allowed_address_pairs=(m.AddressPair("10.0.0.0/24"),),
    )
    fields.update(over)
    return m.PortBinding(**fields)


def test_round_trip():
    b = binding()
    assert m.decode(m.PortBinding, "k", m.encode(b)) == b
    assert m.decode(m.PortBinding, "k", m.encode(b).encode()) == b


def test_state_round_trip():
    s = m.PortState(
        "p1",
        "b1",
        "active",
        programmed=m.Programmed("Virt0", 3, 1, "eth0", 100, 1500, "fa:16:3e:00:00:01"),
    )
    assert m.decode(m.PortState, "k", m.encode(s)) == s


def mutate(fn):
    data = json.loads(m.encode(binding()))
    fn(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("{", "not JSON"),
        ("[]", "not a JSON object"),
        (mutate(lambda d: d.update(version=2)), "schema version 2"),
        (mutate(lambda d: d.pop("version")), "schema version None"),
        (mutate(lambda d: d.update(mtu="1500")), "mtu: expected an integer"),
        (mutate(lambda d: d.update(mtu=True)), "mtu: expected an integer"),
        (mutate(lambda d: d.update(mtu=20)), "mtu 20 out of range"),
        (mutate(lambda d: d.update(color="red")), "unknown field(s) ['color']"),
        (mutate(lambda d: d.pop("mac_address")), "mac_address: required field missing"),
        (mutate(lambda d: d.update(mac_address="FA:16:3E:00:00:01")), "not a lower-case MAC"),
        (mutate(lambda d: d.update(network_type="gre")), "network_type: 'gre' is not one of"),
        (mutate(lambda d: d.update(segmentation_id=5000)), "segmentation_id 1..4094"),
        (mutate(lambda d: d.update(network_type="flat")), "must not have a segmentation_id"),
        (mutate(lambda d: d.update(binding_type="tap")), "binding_type tap needs"),
        (mutate(lambda d: d["vhostuser"].update(mode="both")), "vhostuser.mode"),
        (mutate(lambda d: d["fixed_ips"][0].update(ip_address="10.0.0.300")), "10.0.0.300"),
        (
            mutate(lambda d: d["fixed_ips"][1].pop("ip_address")),
            "fixed_ips[1].ip_address: required",
        ),
        (mutate(lambda d: d.update(security_groups="sg1")), "security_groups: expected a list"),
    ],
)
def test_bad_values_name_key_and_reason(raw, reason):
    with pytest.raises(m.BadValue) as err:
        m.decode(m.PortBinding, "/networking-vpp/nodes/h/ports/p1", raw)
    assert err.value.key == "/networking-vpp/nodes/h/ports/p1"
    assert reason in err.value.reason
    assert "/networking-vpp/nodes/h/ports/p1" in str(err.value)


def test_oversized_value_rejected():
    with pytest.raises(m.BadValue, match="over"):
        m.decode(m.PortBinding, "k", "x" * (m.MAX_VALUE_BYTES + 1))

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
        (mutate(lambda d: d.update(mtu="1500")), "Expected `int`, got `str` - at `$.mtu`"),
        (mutate(lambda d: d.update(mtu=True)), "Expected `int`, got `bool` - at `$.mtu`"),
        (mutate(lambda d: d.update(mtu=20)), "mtu 20 out of range"),
        (mutate(lambda d: d.update(version=True)), "schema version True"),
        (mutate(lambda d: d.update(version="1")), "schema version '1'"),
        (mutate(lambda d: d.pop("mac_address")), "missing required field `mac_address`"),
        (mutate(lambda d: d.update(mac_address="FA:16:3E:00:00:01")), "not a lower-case MAC"),
        (
            mutate(lambda d: d.update(network_type="gre")),
            "Invalid enum value 'gre' - at `$.network_type`",
        ),
        (mutate(lambda d: d.update(segmentation_id=5000)), "segmentation_id 1..4094"),
        (mutate(lambda d: d.update(network_type="flat")), "must not have a segmentation_id"),
        (mutate(lambda d: d.update(binding_type="tap")), "binding_type tap needs"),
        (mutate(lambda d: d["vhostuser"].update(mode="both")), "vhostuser.mode"),
        (mutate(lambda d: d["fixed_ips"][0].update(ip_address="10.0.0.300")), "10.0.0.300"),
        (
            mutate(lambda d: d["fixed_ips"][1].pop("ip_address")),
            "missing required field `ip_address` - at `$.fixed_ips[1]`",
        ),
        (
            mutate(lambda d: d.update(security_groups="sg1")),
            "Expected `array`, got `str` - at `$.security_groups`",
        ),
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


# --- compatibility between versions (the rule is in model's docstring) ------------


def test_encoding_is_stable():
    # Values already in etcd are compared byte for byte (sync, the agent's
    # cache): the encoding of an unchanged schema must not change.
    s = m.PortState(
        "p1",
        "b1",
        "active",
        programmed=m.Programmed("Virt0", 3, 1, "eth0", None, 1500, "fa:16:3e:00:00:01"),
        reported_at=1700000000.25,
    )
    assert m.encode(s) == (
        '{"binding_id":"b1","port_id":"p1","programmed":{"bridge_domain":1,'
        '"interface":"Virt0","mac_address":"fa:16:3e:00:00:01","mtu":1500,'
        '"sw_if_index":3,"uplink":"eth0","vlan":null},"reason":"","reported_at":1700000000.25,'
        '"status":"active","version":1}'
    )
    assert m.encode(binding()) == (
        '{"admin_state_up":true,"allowed_address_pairs":[{"ip_address":"10.0.0.0/24",'
        '"mac_address":null}],"binding_id":"b1","binding_type":"vhostuser","device_id":"",'
        '"device_owner":"","fixed_ips":[{"ip_address":"10.0.0.3","subnet_id":"s1"},'
        '{"ip_address":"2001:db8::3","subnet_id":"s2"}],"mac_address":"fa:16:3e:00:00:01",'
        '"mtu":1500,"network_id":"n1","network_type":"vlan","physnet":"physnet1",'
        '"port_id":"p1","port_security_enabled":true,"security_groups":[],'
        '"segmentation_id":100,"tap":null,"version":1,'
        '"vhostuser":{"mode":"client","socket":"/run/vpp/vhu1"}}'
    )


def test_new_server_old_agent_fields_it_does_not_know_are_ignored():
    # A newer writer of the same major version added optional fields, at the
    # top and inside nested objects: this reader takes the value without them.
    def newer(d):
        d.update(qos_policy={"max_kbps": 1000})
        d["vhostuser"].update(queues=4)
        d["fixed_ips"][0].update(scope="global")

    assert m.decode(m.PortBinding, "k", mutate(newer)) == binding()
    state = json.loads(m.encode(m.PortState("p1", "b1", "error", "no uplink")))
    state["hint"] = "check the physnet"
    assert m.decode(m.PortState, "k", json.dumps(state)) == m.PortState(
        "p1", "b1", "error", "no uplink"
    )


def test_new_server_old_agent_a_newer_major_version_is_a_bad_value():
    raw = mutate(lambda d: d.update(version=m.SCHEMA_VERSION + 1, mtu="jumbo"))
    with pytest.raises(m.BadValue) as err:
        m.decode(m.PortBinding, "k", raw)
    # The version is what is wrong, not the fields a newer schema may change.
    assert f"schema version {m.SCHEMA_VERSION + 1}" in err.value.reason
    assert "mtu" not in err.value.reason


def test_old_server_new_agent_missing_optional_fields_take_their_defaults():
    def older(d):
        for name in ("device_id", "device_owner", "admin_state_up", "port_security_enabled"):
            del d[name]
        del d["vhostuser"]["mode"]

    value = m.decode(m.PortBinding, "k", mutate(older))
    assert value == binding()
    assert value.admin_state_up and value.port_security_enabled
    assert value.vhostuser.mode == "client"
    old_state = '{"binding_id":"b1","port_id":"p1","status":"active","version":1}'
    assert m.decode(m.PortState, "k", old_state) == m.PortState("p1", "b1", "active")

import pytest

from networking_vpp.common import keys as k


@pytest.fixture
def ks():
    return k.KeySpace("/networking-vpp/")


def test_port_key_round_trip(ks):
    key = ks.port("compute-1", "p1")
    assert key == "/networking-vpp/nodes/compute-1/ports/p1"
    assert key.startswith(ks.host_ports_prefix("compute-1"))
    assert ks.parse_port(key) == ("compute-1", "p1")


@pytest.mark.parametrize(
    "key",
    [
        "/networking-vpp/nodes/compute-1/ports/",
        "/networking-vpp/nodes/compute-1/routers/r1",
        "/other/nodes/compute-1/ports/p1",
        "/networking-vpp/nodes/compute-1/ports/p1/extra",
    ],
)
def test_bad_port_keys(ks, key):
    with pytest.raises(k.BadKey):
        ks.parse_port(key)


def test_segments_cannot_contain_slashes(ks):
    with pytest.raises(k.BadKey):
        ks.port("a/b", "p1")
    with pytest.raises(k.BadKey):
        ks.port("h", "")


def test_state_keys(ks):
    assert ks.parse_state(ks.alive("h1")) == k.StateKey("h1", "alive", "")
    assert ks.parse_state(ks.physnet("h1", "physnet1")) == k.StateKey("h1", "physnets", "physnet1")
    assert ks.parse_state(ks.port_state("h1", "p9")) == k.StateKey("h1", "ports", "p9")
    assert ks.port_state("h1", "p9").startswith(ks.state_prefix())
    with pytest.raises(k.BadKey):
        ks.parse_state(ks.state_prefix() + "h1/bogus/x")


def test_global_keys(ks):
    assert ks.parse_global(ks.secgroup("sg1")) == ("secgroups", ("sg1",))
    assert ks.parse_global(ks.remote_group_member("sg1", "p1")) == ("remote_groups", ("sg1", "p1"))
    with pytest.raises(k.BadKey):
        ks.parse_global(ks.global_prefix() + "nope/x")

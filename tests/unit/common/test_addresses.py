"""The fast address helpers agree with ``ipaddress`` on every input."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from networking_vpp.common import addresses as a


def _slow_prefix(text: str) -> str:
    return str(ipaddress.ip_network(text, strict=False))


# IPv6 values rich in zero groups, where "::" placement can go wrong.
_groups = st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0x1234, 0xABCD]), min_size=8, max_size=8)
_v6_values = st.one_of(
    st.integers(0, 2**128 - 1),
    _groups.map(lambda gs: sum(g << (112 - 16 * i) for i, g in enumerate(gs))),
)


@settings(max_examples=500)
@given(_v6_values, st.integers(0, 128), st.booleans())
def test_ipv6_prefixes_match_ipaddress(value: int, plen: int, upper: bool) -> None:
    text = str(ipaddress.IPv6Address(value))
    text = text.upper() if upper else text
    assert a.canonical_prefix(f"{text}/{plen}") == _slow_prefix(f"{text}/{plen}")
    assert a.canonical_prefix(text) == _slow_prefix(text)
    exploded = ipaddress.IPv6Address(value).exploded
    assert a.canonical_prefix(f"{exploded}/{plen}") == _slow_prefix(f"{exploded}/{plen}")


@settings(max_examples=300)
@given(st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_ipv4_prefixes_match_ipaddress(value: int, plen: int) -> None:
    text = str(ipaddress.IPv4Address(value))
    assert a.canonical_prefix(f"{text}/{plen}") == _slow_prefix(f"{text}/{plen}")
    assert a.canonical_prefix(text) == f"{text}/32"


@pytest.mark.parametrize(
    "text",
    [
        "::ffff:10.0.0.1",  # IPv4-mapped: ipaddress's own text, whatever this Python writes
        "::ffff:10.0.0.1/120",
        "::10.0.0.1/128",
        "10.0.0.0/255.255.255.0",  # netmask form
        "10.0.0.0/0.0.0.255",  # hostmask form
        "fe80::1%eth0",
    ],
)
def test_odd_forms_go_to_ipaddress(text: str) -> None:
    try:
        expected = _slow_prefix(text)
    except ValueError:
        with pytest.raises(ValueError):
            a.canonical_prefix(text)
        return
    assert a.canonical_prefix(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10.0.0",
        "10.0.0.256",
        "01.2.3.4",
        "10.0.0.1/33",
        "10.0.0.1/-1",
        "::/129",
        "1::2::3",
        "10.0.0.1/ 24",
        "10.0.0.1/+24",
        "g::1",
        "10.0.0.1/24/3",
    ],
)
def test_invalid_text_is_refused_as_ipaddress_refuses_it(text: str) -> None:
    with pytest.raises(ValueError):
        _slow_prefix(text)
    with pytest.raises(ValueError):
        a.canonical_prefix(text)
    assert not a.is_ip_address(text)


@settings(max_examples=300)
@given(st.binary(min_size=6, max_size=6))
def test_link_local_is_modified_eui64(raw: bytes) -> None:
    mac = raw.hex(":")
    eui = bytes([raw[0] ^ 0x02, raw[1], raw[2], 0xFF, 0xFE, raw[3], raw[4], raw[5]])
    assert a.link_local(mac) == str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + eui))


def test_link_local_with_a_zero_first_group() -> None:
    assert a.link_local("02:00:00:00:00:01") == "fe80::ff:fe00:1"


@pytest.mark.parametrize("text", ["10.0.0.1", "2001:db8::1", "::", "fe80::1%eth0"])
def test_is_ip_address(text: str) -> None:
    assert a.is_ip_address(text)

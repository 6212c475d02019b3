"""etcd connection settings: secrets stay out of reprs (and so out of logs)."""

from __future__ import annotations

import logging

import pytest

from networking_vpp.common.etcd.lease import check_keepalive_timeout
from networking_vpp.common.etcd.settings import EtcdSettings


def test_password_never_in_repr_or_log(caplog: pytest.LogCaptureFixture) -> None:
    s = EtcdSettings(["127.0.0.1:2379"], username="compute-1", password="s3cr3t-Pa55")
    assert "s3cr3t-Pa55" not in repr(s) and "s3cr3t-Pa55" not in str(s)
    assert "compute-1" in repr(s) and "password=***" in repr(s)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").info("settings %s %r", s, s)
    assert "s3cr3t-Pa55" not in caplog.text
    assert "password=None" in repr(EtcdSettings(["127.0.0.1:2379"]))


@pytest.mark.parametrize(("ttl", "timeout"), [(5, 5.0), (9, 3.0), (10, 4.0)])
def test_keepalive_longer_than_a_third_of_ttl_is_refused(ttl: int, timeout: float) -> None:
    with pytest.raises(ValueError, match=r"election_ttl .* \[etcd\] timeout"):
        check_keepalive_timeout(ttl, timeout, "election_ttl")


def test_keepalive_within_a_third_of_its_ttl_is_fine() -> None:
    check_keepalive_timeout(10, 3.0, "alive_ttl")
    check_keepalive_timeout(5, 1.5, "election_ttl")

"""The journal under a 3-member etcd cluster that loses members, its leader, then everything.

Port traffic runs through the real API (three client threads) while the test
kills etcd: a follower (twice), the leader (twice), and finally every member for
``NETWORKING_VPP_FAULT_OUTAGE`` seconds (5 here; ``benchmarks/fault_soak.py``
holds 30 s) (:func:`~networking_vpp.testing.faultcloud.scenarios.etcd_faults`).
During the outage Neutron keeps committing and the journal grows; when etcd is
back it must drain, in order. Then: no lost or reordered journal write (audit
against etcd's history), the journal table empty, etcd equal to the
database-derived state, every host's VPP equal to etcd, reports current.
"""

from __future__ import annotations

import os

import pytest

from networking_vpp.testing.faultcloud import scenarios

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

OPS = int(os.environ.get("NETWORKING_VPP_FAULT_ETCD_OPS", "200"))
OUTAGE = float(os.environ.get("NETWORKING_VPP_FAULT_OUTAGE", "5"))
SEED = int(os.environ.get("NETWORKING_VPP_FAULT_SEED", "20261123"))


def test_journal_through_member_leader_and_full_etcd_outages(fault_cloud, fault_networks, figures):
    outcome = scenarios.etcd_faults(fault_cloud, fault_networks, ops=OPS, outage=OUTAGE, seed=SEED)
    figures(outcome.figures())
    assert len(outcome.faults) == len(scenarios.ETCD_PLAN), outcome.faults
    assert outcome.extra["committed"] > 0, "nothing was committed during the outage"
    assert not outcome.problems(), outcome.problems()[:10]
    assert fault_cloud.audit.dead() == 0  # (empty journal: part of converged)
    fault_cloud.wait_converged(120)  # and without the scenario's ports

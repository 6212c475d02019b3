"""Neutron API workers SIGKILLed at random points of 500+ port operations.

Four client threads create, bind, update, rebind, unbind and delete ports through
the real API (uWSGI, two workers) while the test SIGKILLs workers, never the
master: the forwarder's leader, the other worker, or both at once. Each time,
uWSGI must respawn the worker by itself and its networking-vpp services must
start again (:func:`~networking_vpp.testing.faultcloud.scenarios.api_worker_kills`).
Then:

* no journal row lost and none reordered: every committed journal write (the
  audit trigger's copy, in Neutron's transaction) against etcd's own history,
  key by key; the forwarder's resyncs never had to repair anything;
* every request left without an answer was applied entirely or not at all
  (database and journal agree on its marker), and its retry completed it;
* every port is as the last answered request left it;
* etcd equals the state derived from Neutron's database, and every host's VPP
  equals its etcd bindings, with current reports.
"""

from __future__ import annotations

import os

import pytest

from networking_vpp.testing.faultcloud import scenarios

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

OPS = int(os.environ.get("NETWORKING_VPP_FAULT_API_OPS", "520"))
SEED = int(os.environ.get("NETWORKING_VPP_FAULT_SEED", "20261123"))


def test_api_workers_sigkilled_during_port_operations(fault_cloud, fault_networks, figures):
    outcome = scenarios.api_worker_kills(fault_cloud, fault_networks, ops=OPS, seed=SEED)
    figures(outcome.figures())
    assert outcome.stats.ops >= OPS
    assert len(outcome.faults) >= 4, f"only {outcome.faults} happened"
    assert outcome.stats.interrupted > 0, "no request was cut by a kill: nothing was proved"
    assert not outcome.problems(), outcome.problems()[:10]
    assert fault_cloud.audit.dead() == 0
    fault_cloud.wait_converged(120)  # and without the scenario's ports

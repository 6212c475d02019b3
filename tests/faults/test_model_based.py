"""Model-based: random networks, ports, bindings and security groups, mixed with crashes.

The state machine (:mod:`networking_vpp.testing.faultcloud.machine`) drives the
real API and, between operations, SIGKILLs and restarts agents, crashes and
restarts VPPs, and restarts etcd (a member, the leader, or all members). At the
end of every example desired equals actual on every host: etcd equals the state
derived from Neutron's database, each host's VPP objects equal its etcd
bindings, every bound port is reported with its current binding id, and the API
agrees with the model. Over the run: no committed journal write lost or
reordered. ``NETWORKING_VPP_FAULT_EXAMPLES`` / ``_STEPS`` scale it;
``NETWORKING_VPP_FAULT_SHRINK=1`` shrinks a failure (slow: minutes).
"""

from __future__ import annotations

import os

import pytest

from networking_vpp.testing.faultcloud.machine import run_model

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

EXAMPLES = int(os.environ.get("NETWORKING_VPP_FAULT_EXAMPLES", "8"))
STEPS = int(os.environ.get("NETWORKING_VPP_FAULT_STEPS", "15"))
SHRINK = os.environ.get("NETWORKING_VPP_FAULT_SHRINK") == "1"


def test_random_operations_and_crashes_converge(fault_cloud, figures):
    outcome = run_model(fault_cloud, EXAMPLES, STEPS, SHRINK)
    figures(outcome.figures())
    assert outcome.totals.examples >= EXAMPLES
    assert not outcome.problems(), outcome.problems()[:10]
    assert fault_cloud.audit.dead() == 0

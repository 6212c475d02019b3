"""A group's shared ACL is collected when its last port went away while the agent was down.

Found by the model-based fault test: a port deleted while its host's agent was
restarting left its groups' ACLs in VPP for good. On restart, the agent's resync
queues the adopted port after the group (already queued by the first load), so the
group is looked at while the stale interface still holds its ACL (kept), and the
port's removal then had no record of the groups it held (that memory is rebuilt
empty on a resync), so nothing queued the group again.
"""

from __future__ import annotations

from networking_vpp.agent.vpp import types as t
from networking_vpp.testing.wait import wait_for

from .test_agent_secgroups import setup_cloud


def group_acls(rig) -> set[str]:
    return {a.tag for a in rig.look.dump_acls() if a.tag.startswith(t.SECGROUP_TAG)}


def test_acl_of_a_port_deleted_while_the_agent_was_down_is_collected(rig, etcd):
    rig.vpp.auto_connect_vms = True
    setup_cloud(rig, etcd)
    assert {f"{t.SECGROUP_TAG}web:in", f"{t.SECGROUP_TAG}web:out"} <= group_acls(rig)
    rig.stop_agents()
    rig.delete("web")  # the only port in group "web"; the group itself stays
    agent = rig.start_agent()
    assert agent.wait_converged(10)
    wait_for(
        lambda: not any(tag.startswith(f"{t.SECGROUP_TAG}web:") for tag in group_acls(rig)),
        10,
        "group web's ACLs collected",
    )
    assert {f"{t.SECGROUP_TAG}admins:in", f"{t.SECGROUP_TAG}admins:out"} <= group_acls(rig)

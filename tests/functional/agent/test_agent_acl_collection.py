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

from .conftest import HOST_TAGS
from .test_agent_secgroups import setup_cloud, vm


def group_acls(rig) -> set[str]:
    """The bodies of the host's group ACLs' tags."""
    tags = [HOST_TAGS.ours(a.tag) for a in rig.look.dump_acls()]
    return {tag for tag in tags if tag and tag.startswith(t.SECGROUP_TAG)}


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


def essentials(rig) -> set[str]:
    return {a.tag for a in rig.look.dump_acls() if a.tag.startswith(t.ESSENTIALS_TAG)}


def test_essentials_acls_go_with_their_last_port(rig, etcd):
    """The ACLs every secured port shares are collected with the last port
    that uses them, as a group's are; a new secured port makes them again."""
    rig.vpp.auto_connect_vms = True
    setup_cloud(rig, etcd)
    assert len(essentials(rig)) == 2
    rig.delete("web")
    rig.delete("admin1")
    wait_for(lambda: rig.state("admin1") is None, 10, "admin1 gone")
    assert len(essentials(rig)) == 2  # "other" still uses them
    # Port security off on the last secured port: no port uses them any more.
    rig.put(vm("other", ["admins"], port_security_enabled=False))
    wait_for(lambda: not essentials(rig), 10, "essentials ACLs collected")
    rig.put(vm("other", ["admins"]))
    wait_for(lambda: len(essentials(rig)) == 2, 10, "essentials ACLs made again")
    rig.delete("other")
    wait_for(lambda: not essentials(rig), 10, "essentials ACLs collected with the last port")
    # The group's own ACLs go at its key, queued behind the port's
    wait_for(lambda: not rig.look.dump_acls(), 10, "the group's ACLs collected")


def test_essentials_acls_of_ports_deleted_while_the_agent_was_down_are_collected(rig, etcd):
    rig.vpp.auto_connect_vms = True
    setup_cloud(rig, etcd)
    rig.stop_agents()
    for port in ("web", "admin1", "other"):
        rig.delete(port)
    agent = rig.start_agent()
    assert agent.wait_converged(10)
    wait_for(lambda: not rig.look.dump_acls(), 10, "every ACL collected")

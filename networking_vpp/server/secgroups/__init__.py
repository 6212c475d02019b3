"""Security groups on VPP ACLs, server side: Neutron's groups, rules and memberships in etcd.

* :mod:`.values`: Neutron data -> etcd values (normalisation, what VPP cannot express);
* :mod:`.db`: reads of Neutron's tables, and :func:`desired_secgroup_state` for the resync;
* :mod:`.journal`: the Neutron callbacks and port hooks that journal changes in
  Neutron's own transaction.
"""

from networking_vpp.server.secgroups.db import desired_secgroup_state

__all__ = ["desired_secgroup_state"]

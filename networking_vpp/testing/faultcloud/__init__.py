"""The fault cloud: a dev cloud whose every piece can be killed, and the checks that follow.

* :mod:`.rig`: etcd cluster + MariaDB + Neutron (uWSGI) + hosts (VPP and agent as
  separate processes), fault hooks, and ``wait_converged``;
* :mod:`.workload`: port traffic from client threads, settling unanswered requests;
* :mod:`.history`: the journal audit and etcd's history (lost / reordered writes);
* :mod:`.oracle`: etcd against the database-derived desired state (the resync's dry run);
* :mod:`.vppcheck`: each host's VPP against its etcd values;
* :mod:`.scenarios`, :mod:`.machine`: the fault scenarios the suite and the soak run.
"""

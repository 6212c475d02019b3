"""A dev cloud in one command: real Neutron, MariaDB and etcd; fake Nova; emulated VPP hosts.

See :mod:`networking_vpp.testing.devcloud.cloud` (start/stop) and
:mod:`networking_vpp.testing.devcloud.client` (what tests and tools ask it).
"""

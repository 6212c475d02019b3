"""The journal: etcd writes recorded in Neutron's transactions, forwarded by one leader."""

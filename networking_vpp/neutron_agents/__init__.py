"""Code that runs inside Neutron's own agents (DHCP, L3), not in the vpp-agent.

It imports Neutron; the vpp-agent never imports anything from here.
"""

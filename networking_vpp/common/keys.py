"""Every etcd key of networking-vpp is built and parsed here, and nowhere else.

Layout (below a configurable prefix, default ``/networking-vpp``)::

    /nodes/<host>/ports/<port_id>              port binding (journal -> agent)
    /global/secgroups/<sg_id>                  security group rules (journal -> agents)
    /global/remote_groups/<sg_id>/<port_id>    a member port's IPs (journal -> agents)
    /state/<host>/alive                        agent liveness, under a lease (agent -> server)
    /state/<host>/physnets/<name>              physnets the host serves (agent -> server)
    /state/<host>/summary                      what the agent has programmed (agent -> operators)
    /state/<host>/ports/<port_id>              what the agent programmed (agent -> server)
    /election/<role>                           leader election (server)
    /kick/<role>                               wake-up key for an elected role (server)
"""

from __future__ import annotations

import dataclasses

DEFAULT_PREFIX = "/networking-vpp"


class BadKey(ValueError):
    """A key that does not belong to the layout."""


@dataclasses.dataclass(frozen=True)
class StateKey:
    """A parsed ``/state/<host>/...`` key."""

    host: str
    kind: str  # "alive", "summary", "physnets" or "ports"
    name: str  # physnet name or port id; "" for alive


def _check_segment(value: str, what: str) -> str:
    if not value or "/" in value:
        raise BadKey(f"{what} {value!r} is empty or contains '/'")
    return value


class KeySpace:
    """Builds and parses every key below one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = "/" + prefix.strip("/")

    # --- hosts ---------------------------------------------------------------
    def nodes_prefix(self) -> str:
        """Everything the server tells every host."""
        return f"{self.prefix}/nodes/"

    def host_prefix(self, host: str) -> str:
        """Everything the server tells one host."""
        return f"{self.prefix}/nodes/{_check_segment(host, 'host')}/"

    def host_ports_prefix(self, host: str) -> str:
        """The port bindings of one host."""
        return f"{self.host_prefix(host)}ports/"

    def port(self, host: str, port_id: str) -> str:
        """The binding of one port on one host."""
        return f"{self.host_ports_prefix(host)}{_check_segment(port_id, 'port id')}"

    def parse_port(self, key: str) -> tuple[str, str]:
        """``(host, port_id)`` of a port binding key."""
        rest = self._strip(key, f"{self.prefix}/nodes/")
        parts = rest.split("/")
        if len(parts) != 3 or parts[1] != "ports" or not parts[0] or not parts[2]:
            raise BadKey(f"{key!r} is not a port binding key")
        return parts[0], parts[2]

    # --- global --------------------------------------------------------------
    def global_prefix(self) -> str:
        """Data every host may need."""
        return f"{self.prefix}/global/"

    def secgroups_prefix(self) -> str:
        """All security groups."""
        return f"{self.prefix}/global/secgroups/"

    def secgroup(self, sg_id: str) -> str:
        """One security group's rules."""
        return f"{self.secgroups_prefix()}{_check_segment(sg_id, 'security group id')}"

    def remote_groups_prefix(self) -> str:
        """All remote-group memberships."""
        return f"{self.prefix}/global/remote_groups/"

    def remote_group_member(self, sg_id: str, port_id: str) -> str:
        """One member port of a group, as seen by rules naming it as remote group."""
        return (
            f"{self.remote_groups_prefix()}{_check_segment(sg_id, 'security group id')}/"
            f"{_check_segment(port_id, 'port id')}"
        )

    def parse_global(self, key: str) -> tuple[str, tuple[str, ...]]:
        """``(kind, ids)`` of a ``/global/`` key: ``("secgroups", (sg,))`` etc."""
        rest = self._strip(key, self.global_prefix())
        parts = tuple(rest.split("/"))
        if parts[0] == "secgroups" and len(parts) == 2 and parts[1]:
            return "secgroups", parts[1:]
        if parts[0] == "remote_groups" and len(parts) == 3 and all(parts[1:]):
            return "remote_groups", parts[1:]
        raise BadKey(f"{key!r} is not a known /global/ key")

    # --- state ---------------------------------------------------------------
    def state_prefix(self) -> str:
        """Everything the agents report."""
        return f"{self.prefix}/state/"

    def host_state_prefix(self, host: str) -> str:
        """Everything one agent reports."""
        return f"{self.state_prefix()}{_check_segment(host, 'host')}/"

    def alive(self, host: str) -> str:
        """Leased liveness key of a host's agent."""
        return f"{self.host_state_prefix(host)}alive"

    def summary(self, host: str) -> str:
        """A short summary of what one agent has programmed (for drift checks)."""
        return f"{self.host_state_prefix(host)}summary"

    def physnets_prefix(self, host: str) -> str:
        """The physnets one host serves."""
        return f"{self.host_state_prefix(host)}physnets/"

    def physnet(self, host: str, name: str) -> str:
        """One physnet one host serves."""
        return f"{self.physnets_prefix(host)}{_check_segment(name, 'physnet')}"

    def port_states_prefix(self, host: str) -> str:
        """One host's port reports."""
        return f"{self.host_state_prefix(host)}ports/"

    def port_state(self, host: str, port_id: str) -> str:
        """One host's report on one port."""
        return f"{self.port_states_prefix(host)}{_check_segment(port_id, 'port id')}"

    def parse_state(self, key: str) -> StateKey:
        """Parse any ``/state/<host>/...`` key."""
        rest = self._strip(key, self.state_prefix())
        parts = rest.split("/")
        if len(parts) == 2 and parts[1] in ("alive", "summary") and parts[0]:
            return StateKey(parts[0], parts[1], "")
        if len(parts) == 3 and parts[1] in ("physnets", "ports") and parts[0] and parts[2]:
            return StateKey(parts[0], parts[1], parts[2])
        raise BadKey(f"{key!r} is not a known /state/ key")

    # --- server coordination ---------------------------------------------------
    def election(self, role: str) -> str:
        """The key whose leased holder is the leader of ``role``."""
        return f"{self.prefix}/election/{_check_segment(role, 'role')}"

    def kick(self, role: str) -> str:
        """A key whose every write wakes the leader of ``role``."""
        return f"{self.prefix}/kick/{_check_segment(role, 'role')}"

    def election_prefix(self) -> str:
        """Every election key (the server's alone, see ``networking-vpp etcd-setup``)."""
        return f"{self.prefix}/election/"

    def kick_prefix(self) -> str:
        """Every kick key (the server's alone)."""
        return f"{self.prefix}/kick/"

    def root_prefix(self) -> str:
        """Every networking-vpp key."""
        return f"{self.prefix}/"

    # --- helpers -------------------------------------------------------------
    def _strip(self, key: str, prefix: str) -> str:
        if not key.startswith(prefix):
            raise BadKey(f"{key!r} is not below {prefix!r}")
        return key[len(prefix) :]

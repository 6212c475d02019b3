"""vpp-agent liveness in Neutron's agents table (``openstack network agent list``).

The agents never talk to Neutron: their leased ``/state/<host>/alive`` key is
the heartbeat. The elected state watcher mirrors it: a new or revived agent,
or a change of its physnets, goes through ``create_or_update_agent`` (so
Neutron's callbacks, e.g. segment-host mappings, see it); while the key lives,
a periodic bulk update keeps ``heartbeat_timestamp`` fresh; when the key is
gone the timestamp is moved back past ``agent_down_time`` so Neutron shows the
agent dead at once rather than ``agent_down_time`` seconds later.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from neutron.db.models import agent as agent_model
from neutron_lib import context as n_context
from neutron_lib.db import api as db_api
from neutron_lib.plugins import directory
from oslo_config import cfg
from oslo_utils import timeutils

LOG = logging.getLogger(__name__)

AGENT_TYPE = "VPP agent"
AGENT_BINARY = "vpp-agent"
AGENT_TOPIC = "N/A"  # no RPC: the agent talks to etcd only


def heartbeat_interval() -> float:
    """Seconds between heartbeats: well inside Neutron's ``agent_down_time``."""
    return max(1.0, min(30.0, cfg.CONF.agent_down_time / 3.0))


class AgentRegistry:
    """Writes VPP agents into Neutron's agents table."""

    def __init__(self, plugin: Any = None) -> None:
        self._plugin = plugin

    @property
    def plugin(self) -> Any:
        """The core plugin (looked up late: it may not exist when we are built)."""
        return self._plugin or directory.get_plugin()

    def report(
        self,
        host: str,
        physnets: Mapping[str, str],
        agent_version: str = "",
        start: bool = False,
    ) -> None:
        """Create or refresh the host's agent row (heartbeat now, configurations)."""
        state = {
            "agent_type": AGENT_TYPE,
            "binary": AGENT_BINARY,
            "host": host,
            "topic": AGENT_TOPIC,
            # interface_mappings is the key Neutron's segments plugin reads physnets from.
            "configurations": {
                "interface_mappings": dict(sorted(physnets.items())),
                "agent_version": agent_version,
            },
            "start_flag": start,
        }
        ctx = n_context.get_admin_context()
        status, _ = self.plugin.create_or_update_agent(ctx, state)
        LOG.info("VPP agent on %s reported (%s), physnets %s", host, status, sorted(physnets))

    def heartbeat(self, hosts: Iterable[str]) -> int:
        """Refresh the heartbeat of these hosts' agents in one statement."""
        names = sorted(set(hosts))
        if not names:
            return 0
        return self._set_heartbeat(names, timeutils.utcnow())

    def mark_down(self, hosts: Iterable[str]) -> int:
        """Make Neutron see these hosts' agents as dead now."""
        names = sorted(set(hosts))
        if not names:
            return 0
        past = timeutils.utcnow() - datetime.timedelta(seconds=cfg.CONF.agent_down_time + 1)
        count = self._set_heartbeat(names, past, only_newer=True)
        if count:
            LOG.warning("VPP agent(s) on %s lost their etcd liveness key: marked down", names)
        return count

    def known_hosts(self) -> set[str]:
        """Hosts that have a VPP agent row (alive or not)."""
        ctx = n_context.get_admin_context()
        with db_api.CONTEXT_READER.using(ctx):
            rows = ctx.session.execute(
                sa.select(agent_model.Agent.host).where(agent_model.Agent.agent_type == AGENT_TYPE)
            ).all()
        return {r.host for r in rows}

    @staticmethod
    def _set_heartbeat(hosts: list[str], when: datetime.datetime, only_newer: bool = False) -> int:
        ctx = n_context.get_admin_context()
        count = 0
        with db_api.CONTEXT_WRITER.using(ctx):
            for start in range(0, len(hosts), 500):
                cond = [
                    agent_model.Agent.agent_type == AGENT_TYPE,
                    agent_model.Agent.host.in_(hosts[start : start + 500]),
                ]
                if only_newer:  # never move a dead agent's timestamp forward
                    cond.append(agent_model.Agent.heartbeat_timestamp > when)
                result = ctx.session.execute(
                    sa.update(agent_model.Agent)
                    .where(*cond)
                    .values(heartbeat_timestamp=when)
                    .execution_options(synchronize_session=False)
                )
                count += result.rowcount or 0
        return count

"""Journal work that runs just before a transaction commits, for ports whose rows changed in it.

Some of Neutron's changes reach no mechanism-driver precommit: Nova's INACTIVE
port bindings (created, activated and deleted with no driver call), and the
addresses an IPv6 auto-address subnet gives every port of its network (each in
a short transaction of its own). The journal follows the rows themselves, as
Neutron's revision plugin does: a session listener notes the ports whose rows
of the watched tables are added, changed or deleted, and just before the
transaction commits the stages run, in the order they were added, with those
ports. SQLAlchemy flushes what they write as part of the commit, so their
journal rows are in Neutron's transaction and roll back with it.

A stage may run although a precommit already journaled the same change (a port
update changes its addresses too): stages diff against what the journal last
wrote, so they write nothing then.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable
from typing import Any

from neutron_lib.db import api as db_api
from sqlalchemy.orm import session as orm_session

_NOTED = "networking_vpp.commit_hooks"  # session.info: stage name -> port ids
_WROTE = "networking_vpp.commit_hooks.wrote"  # session.info: a stage journaled rows
_COVERED = "networking_vpp.commit_hooks.covered"  # session.info: stage name -> port ids

#: (session, port ids in id order) -> whether journal rows were written
StageFn = Callable[[Any, list[str]], bool]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One kind of work: which tables' changes call for it, and what it does."""

    name: str
    watches: tuple[type, ...]
    run: StageFn


class CommitHooks:
    """The stages, and the session listeners that run them."""

    def __init__(self, kick: Callable[[], None] = lambda: None) -> None:
        self._stages: list[Stage] = []
        self._kick = kick  # wakes the forwarder: some of these paths have no postcommit

    def add(self, name: str, watches: Iterable[type], run: StageFn) -> None:
        """Run ``run`` before commit for ports whose ``watches`` rows changed (or noted)."""
        self._stages.append(Stage(name, tuple(watches), run))

    def listen(self) -> None:
        """Listen on every session (``db_api.sqla_listen``: Neutron's tests remove it)."""
        db_api.sqla_listen(orm_session.Session, "before_flush", self._before_flush)
        db_api.sqla_listen(orm_session.Session, "before_commit", self._before_commit)
        db_api.sqla_listen(orm_session.Session, "after_commit", self._after_commit)
        db_api.sqla_listen(orm_session.Session, "after_rollback", _forget)

    @staticmethod
    def note(session: Any, stage: str, port_ids: Iterable[str]) -> None:
        """Run ``stage`` for these ports before ``session`` commits."""
        noted: dict[str, set[str]] = session.info.setdefault(_NOTED, {})
        noted.setdefault(stage, set()).update(port_ids)

    @staticmethod
    def covered(session: Any, stage: str, port_ids: Iterable[str]) -> None:
        """A precommit journaled these ports' change already: ``stage`` skips them.

        A port update or create changes its address allocations and then runs
        the precommits, which see the final addresses; recomputing at commit
        would lock and read the same rows again for nothing.
        """
        covered: dict[str, set[str]] = session.info.setdefault(_COVERED, {})
        covered.setdefault(stage, set()).update(port_ids)

    def _before_flush(self, session: Any, flush_context: Any, instances: Any) -> None:
        for obj in itertools.chain(session.new, session.dirty, session.deleted):
            for stage in self._stages:
                if isinstance(obj, stage.watches):
                    port_id = getattr(obj, "port_id", None)
                    if port_id:
                        self.note(session, stage.name, [port_id])

    def _before_commit(self, session: Any) -> None:
        while session.info.get(_NOTED):
            session.flush()  # changes still pending may note more ports
            for stage in self._stages:  # in order: a later stage sees what an earlier wrote
                ports = session.info.get(_NOTED, {}).pop(stage.name, set())
                ports -= session.info.get(_COVERED, {}).get(stage.name, set())
                if ports and stage.run(session, sorted(ports)):  # one lock order
                    session.info[_WROTE] = True
            # What a stage noted for an earlier one runs in another pass.

    def _after_commit(self, session: Any) -> None:
        session.info.pop(_COVERED, None)
        if session.info.pop(_WROTE, False):
            self._kick()


def _forget(session: Any) -> None:
    session.info.pop(_NOTED, None)
    session.info.pop(_WROTE, None)
    session.info.pop(_COVERED, None)

"""ML2 mechanism drivers for tests (tests/unit/server/conftest.py registers them for ML2)."""

from __future__ import annotations

from typing import Any, ClassVar

from neutron_lib import exceptions as n_exc
from neutron_lib.plugins.ml2 import api


class InjectedFailure(n_exc.NeutronException):
    message = "injected failure in %(method)s"


class FailingMechanismDriver(api.MechanismDriver):
    """Raises in the precommits named in ``fail_on``, after the drivers before it ran.

    Listed after ``vpp`` in ``mechanism_drivers``, it proves that rows the vpp
    driver wrote in a precommit roll back with Neutron's own change.
    """

    fail_on: ClassVar[set[str]] = set()

    def initialize(self) -> None:
        """Nothing to set up."""

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail_on:
            raise InjectedFailure(method=method)

    def create_port_precommit(self, context: Any) -> None:
        """Fail if asked to."""
        self._maybe_fail("create_port_precommit")

    def update_port_precommit(self, context: Any) -> None:
        """Fail if asked to."""
        self._maybe_fail("update_port_precommit")

    def delete_port_precommit(self, context: Any) -> None:
        """Fail if asked to."""
        self._maybe_fail("delete_port_precommit")

    def update_network_precommit(self, context: Any) -> None:
        """Fail if asked to."""
        self._maybe_fail("update_network_precommit")

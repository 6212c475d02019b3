"""What VPP holds, read back: the adapter's dumps (mixed into ``VppAdapter``).

Each dump turns vpp_papi's rows into the agent's types (``types.py``): the
inventory is built from them at every resync. Rows come NUL-padded and with
MACAddress objects; ``_str`` makes text of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from networking_vpp.agent.vpp import types as t
from networking_vpp.agent.vpp.acl import _str

# vl_api_if_status_flags_t
IF_STATUS_API_FLAG_ADMIN_UP = 1
IF_STATUS_API_FLAG_LINK_UP = 2


def _link_up(row: Any) -> bool:
    """Whether a ``sw_interface_details`` row says the link is up."""
    return bool(int(row.flags) & IF_STATUS_API_FLAG_LINK_UP)


class DumpOps:
    """Mixed into VppAdapter: needs its ``_call`` and ``_query``."""

    def _call(self, message: str, **fields: Any) -> Any:
        raise NotImplementedError

    def _query(self, message: str, got: Callable[[Any], None], **fields: Any) -> None:
        raise NotImplementedError

    def dump_interfaces(self, sw_if_index: int = t.NO_INDEX) -> list[t.Interface]:
        """Every interface, or just one."""
        rows = self._call("sw_interface_dump", sw_if_index=sw_if_index)
        return [self._interface(r) for r in rows]

    def get_interface(self, sw_if_index: int) -> t.Interface | None:
        """One interface, or None if VPP has no such index."""
        rows = self.dump_interfaces(sw_if_index)
        return rows[0] if rows else None

    def name_and_link(self, sw_if_index: int) -> tuple[str, bool] | None:
        """The name VPP gave an interface and whether its link is up (None if
        there is no such index).

        What a freshly created port needs of its interface: everything else
        about it the agent has just set, so converting the whole record (as
        :meth:`get_interface` does) would be work for nothing.
        """
        rows = self._call("sw_interface_dump", sw_if_index=sw_if_index)
        if not rows:
            return None
        return _str(rows[0].interface_name), _link_up(rows[0])

    def read_name_and_link(
        self, sw_if_index: int, got: Callable[[tuple[str, bool] | None], None]
    ) -> None:
        """:meth:`name_and_link`, given to ``got`` (in a batch, once VPP answered)."""

        def rows_to(rows: list[Any]) -> None:
            got((_str(rows[0].interface_name), _link_up(rows[0])) if rows else None)

        self._query("sw_interface_dump", rows_to, sw_if_index=sw_if_index)

    def link_states(self) -> dict[int, bool]:
        """sw_if_index -> whether its link is up, for every interface."""
        rows = self._call("sw_interface_dump", sw_if_index=t.NO_INDEX)
        return {int(r.sw_if_index): _link_up(r) for r in rows}

    @staticmethod
    def _interface(r: Any) -> t.Interface:
        flags = int(r.flags)
        return t.Interface(
            sw_if_index=int(r.sw_if_index),
            name=_str(r.interface_name),
            tag=_str(r.tag),
            admin_up=bool(flags & IF_STATUS_API_FLAG_ADMIN_UP),
            link_up=bool(flags & IF_STATUS_API_FLAG_LINK_UP),
            mtu=int(r.mtu[0]),
            link_mtu=int(r.link_mtu),
            mac_address=_str(r.l2_address).lower(),
            sup_sw_if_index=int(r.sup_sw_if_index),
            sub_id=int(r.sub_id),
            vlan=int(r.sub_outer_vlan_id),
            vtr_op=int(r.vtr_op),
            dev_type=_str(r.interface_dev_type),
            sub_if_flags=int(r.sub_if_flags),
        )

    def dump_bridge_domains(self) -> list[t.BridgeDomain]:
        """Every bridge domain with its members."""
        rows = self._call("bridge_domain_dump", bd_id=t.NO_INDEX, sw_if_index=t.NO_INDEX)
        return [
            t.BridgeDomain(
                bd_id=int(r.bd_id),
                tag=_str(r.bd_tag),
                learn=bool(r.learn),
                forward=bool(r.forward),
                flood=bool(r.flood),
                uu_flood=bool(r.uu_flood),
                arp_term=bool(r.arp_term),
                members=frozenset(int(m.sw_if_index) for m in r.sw_if_details),
                mac_age=int(r.mac_age),
            )
            for r in rows
        ]

    def dump_vhost_user(self) -> list[t.VhostUser]:
        """Every vhost-user interface."""
        rows = self._call("sw_interface_vhost_user_dump", sw_if_index=t.NO_INDEX)
        return [
            t.VhostUser(
                sw_if_index=int(r.sw_if_index),
                interface_name=_str(r.interface_name),
                sock_filename=_str(r.sock_filename),
                is_server=bool(r.is_server),
                num_regions=int(r.num_regions),
                sock_errno=int(r.sock_errno),
            )
            for r in rows
        ]

    def dump_rx_modes(self) -> dict[int, frozenset[int]]:
        """sw_if_index -> the modes of its receive queues, for every interface
        that has any (a vhost-user one only once its VM started a queue)."""
        rows = self._call("sw_interface_rx_placement_dump", sw_if_index=t.NO_INDEX)
        modes: dict[int, set[int]] = {}
        for r in rows:
            modes.setdefault(int(r.sw_if_index), set()).add(int(r.mode))
        return {index: frozenset(m) for index, m in modes.items()}

    def dump_af_packet(self) -> list[t.AfPacket]:
        """Every af_packet interface."""
        rows = self._call("af_packet_dump")
        return [t.AfPacket(int(r.sw_if_index), _str(r.host_if_name)) for r in rows]

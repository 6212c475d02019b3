"""The VPP emulator against VPP's definitions of record, through vpp_papi.

1. Every message, type and service the emulator declares is exactly what
   VPP 26.10's ``.api.json`` says (``../shared/vpp-api``; skipped when absent),
   and so are the ``.api.json`` files (CRCs included) its socket serves.
2. Every operation of the agent's VPP adapter runs against the emulator's
   socket, made as ``vpp-agent`` makes it: vpp_papi's serializer packs the
   agent's requests and unpacks the emulator's replies and events (argument
   checking is vpp_papi's own).
3. The ACL plugin's messages are declared as VPP has them, and representative
   ACL and MACIP calls are answered through vpp_papi.
"""

from __future__ import annotations

import glob
import inspect
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from networking_vpp.agent.vpp.adapter import RX_MODES, VppAdapter, VppBatchError
from networking_vpp.agent.vpp.connect import vpp_adapter
from networking_vpp.agent.vpp.types import NO_INDEX, AclRule, MacipRule
from networking_vpp.testing.vpp import VppEmulator, apijson
from networking_vpp.testing.vpp.apidef import ApiRegistry
from networking_vpp.testing.vpp.defs import MODULES, registry
from networking_vpp.testing.vpp.emulator import TRANSPORT
from networking_vpp.testing.vpp.socket_server import ApiServer, CallLog, serve

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "vpp-api"


@pytest.fixture(scope="module")
def api_json() -> dict[str, dict[str, Any]]:
    """Messages, services and types of every ``.api.json`` of record."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (VPP's .api.json files of record)")
    out: dict[str, dict[str, Any]] = {"messages": {}, "services": {}, "types": {}, "enums": {}}
    out["aliases"] = {}
    for path in sorted(glob.glob(str(SHARED / "*" / "*.api.json"))):
        data = json.loads(Path(path).read_text())
        for m in data["messages"]:
            out["messages"][m[0]] = [f for f in m[1:] if isinstance(f, list)]
        out["services"].update(data["services"])
        for t in data.get("types", []) + data.get("unions", []):
            out["types"][f"vl_api_{t[0]}_t"] = [f for f in t[1:] if isinstance(f, list)]
        for t in data.get("enums", []) + data.get("enumflags", []):
            opts = next(f for f in t[1:] if isinstance(f, dict))
            values = [tuple(v) for v in t[1:] if isinstance(v, list)]
            out["enums"][f"vl_api_{t[0]}_t"] = (values, opts.get("enumtype"))
        for name, alias in data.get("aliases", {}).items():
            out["aliases"][f"vl_api_{name}_t"] = alias
    return out


def check_registry(reg: ApiRegistry, names: list[str], api_json: dict[str, Any]) -> None:
    """Declared messages, services and the types they use equal the JSON's."""
    for name in names:
        assert name in api_json["messages"], f"VPP has no message {name}"
        declared = [f.as_json() for f in reg.messages[name].fields]
        assert declared == api_json["messages"][name], name
        if name in reg.services:
            assert reg.services[name].as_json() == api_json["services"][name], name
    for tname in reg.referenced_types(names):
        if tname in reg.types:
            assert [f.as_json() for f in reg.types[tname].fields] == api_json["types"][tname]
        elif tname in reg.enums:
            e = reg.enums[tname]
            assert (list(e.values), e.enumtype) == api_json["enums"][tname], tname
        else:
            assert reg.aliases[tname].as_json() == api_json["aliases"][tname], tname


# --- 1. the declaration table is VPP's ---
def test_every_declared_message_type_and_service_is_vpp_s(api_json):
    reg = registry()
    check_registry(reg, list(reg.messages), api_json)
    # services the JSON has for a declared request are declared too
    for name in reg.messages:
        if name in api_json["services"]:
            assert name in reg.services, f"{name} has a service in VPP"


def test_the_generated_api_files_are_vpp_s(tmp_path):
    """What vpp_papi loads from the emulator's socket directory: every message with
    its fields and CRC, every service, type, enum and alias as VPP's files have them."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (VPP's .api.json files of record)")
    record: dict[str, dict[str, Any]] = {}
    for path in sorted(glob.glob(str(SHARED / "*" / "*.api.json"))):
        data = json.loads(Path(path).read_text())
        for m in data["messages"]:
            record.setdefault("messages", {})[m[0]] = [*m[1:-1], {"crc": m[-1]["crc"]}]
        record.setdefault("services", {}).update(data["services"])
        for kind in ("types", "unions", "enums", "enumflags"):
            for t in data.get(kind, []):
                record.setdefault(kind, {})[t[0]] = [f for f in t[1:] if "comment" not in f]
        record.setdefault("aliases", {}).update(data.get("aliases", {}))
    files = apijson.write_api_files(tmp_path)
    assert {f.name for f in files} == {f"{m.__name__.rsplit('.', 1)[1]}.api.json" for m in MODULES}
    messages = 0
    for path in files:
        data = json.loads(path.read_text())
        for m in data["messages"]:
            assert m[1:] == record["messages"][m[0]], m[0]
            messages += 1
        for name, service in data["services"].items():
            assert service == record["services"][name], name
        for kind in ("types", "unions", "enums", "enumflags"):
            for t in data[kind]:
                assert t[1:] == record[kind][t[0]], t[0]
        for name, alias in data["aliases"].items():
            assert alias == record["aliases"][name], name
    assert messages == len(registry().messages)


def test_every_declared_request_has_a_handler_and_a_declared_reply():
    emu = VppEmulator()
    reg = registry()
    assert set(emu.requests) == set(reg.services) - TRANSPORT  # those the socket answers
    for svc in reg.services.values():
        for msg in (svc.reply, svc.stream_msg, *svc.events):
            assert msg is None or msg in reg.messages


def test_the_brief_s_messages_are_all_declared():
    wanted = """control_ping show_version want_interface_events sw_interface_dump
    sw_interface_set_flags sw_interface_set_mtu sw_interface_tag_add_del create_vlan_subif
    delete_subif l2_interface_vlan_tag_rewrite bridge_domain_add_del_v2 bridge_domain_add_del
    bridge_domain_dump sw_interface_set_l2_bridge create_vhost_user_if_v2 delete_vhost_user_if
    sw_interface_vhost_user_dump af_packet_create_v3 af_packet_delete af_packet_dump""".split()
    assert set(wanted) <= set(registry().services)
    assert "sw_interface_event" in registry().messages


# --- 2. the adapter's traffic, through vpp_papi ---
def run_every_adapter_operation(adapter: VppAdapter, emu: VppEmulator, events: list) -> set[str]:
    """Each public operation at least once; returns their names."""
    done = set()

    def did(name: str) -> None:
        done.add(name)

    adapter.on_interface_event(events.append)
    did("on_interface_event")
    assert adapter.probe() is True  # no probe given: connecting is the only look
    did("probe")
    adapter.connect()
    did("connect")
    adapter.ping()
    did("ping")
    uplink = emu.add_hardware_interface("GigabitEthernet0/8/0", "52:54:00:00:08:00")
    emu.add_kernel_interface("tapabc")
    sub = adapter.create_vlan_subif(uplink, 100, "net-vpp.uplink:physnet1.100")
    did("create_vlan_subif")
    adapter.set_vlan_pop1(sub)
    did("set_vlan_pop1")
    adapter.set_efp_filter(sub)
    did("set_efp_filter")
    guard = adapter.create_default_subif(uplink, 4095)
    did("create_default_subif")
    bd = adapter.create_bridge_domain("net-vpp.net:n1", mac_age=5)
    did("create_bridge_domain")
    adapter.set_learn_limit(bd, 1000)
    assert emu.state.bds[bd].learn_limit == 1000 and emu.state.bds[bd].mac_age == 5
    did("set_learn_limit")
    adapter.set_mac_age(bd, 10)
    assert emu.state.bds[bd].mac_age == 10
    assert adapter.dump_bridge_domains()[0].mac_age == 10
    did("set_mac_age")
    vhost = adapter.create_vhost_user("/run/vpp/vhu1", True, "fa:16:3e:00:00:01", "net-vpp.port:p1")
    did("create_vhost_user")
    tap = adapter.create_af_packet("tapabc", "net-vpp.port:p2")
    did("create_af_packet")
    for itf in (uplink, sub, vhost, tap):
        adapter.set_admin_up(itf, True)
    did("set_admin_up")
    adapter.set_mtu(vhost, 1450)
    did("set_mtu")
    adapter.set_tag(vhost, "net-vpp.port:p1")
    did("set_tag")
    for itf in (sub, vhost, tap):
        adapter.set_bridge(itf, bd)
    did("set_bridge")
    emu.vm_connect("/run/vpp/vhu1")
    assert adapter.get_interface(vhost) is not None
    did("get_interface")
    assert adapter.name_and_link(vhost) == ("VirtualEthernet0/0/0", True)
    did("name_and_link")
    adapter.set_rx_mode(vhost, RX_MODES["adaptive"])
    did("set_rx_mode")
    assert adapter.dump_rx_modes()[vhost] == {RX_MODES["adaptive"]}
    did("dump_rx_modes")
    assert adapter.link_states()[vhost] is True
    did("link_states")
    assert len(adapter.dump_interfaces()) == 6
    assert adapter.get_interface(guard).is_guard  # type: ignore[union-attr]
    did("dump_interfaces")
    assert adapter.dump_bridge_domains()[0].members == {sub, vhost, tap}
    did("dump_bridge_domains")
    assert adapter.dump_vhost_user()[0].sock_filename == "/run/vpp/vhu1"
    did("dump_vhost_user")
    assert adapter.dump_af_packet()[0].host_if_name == "tapabc"
    did("dump_af_packet")
    rule4 = AclRule(2, "10.0.0.0/24", "0.0.0.0/0", 6, (0, 65535), (22, 22))
    rule6 = AclRule(1, "::/0", "2001:db8::/64", 58, (128, 128), (0, 255))
    acl = adapter.acl_add_replace(NO_INDEX, "net-vpp.sg:sg1:in", (rule4, rule6))
    did("acl_add_replace")
    assert adapter.acl_add_replace(acl, "net-vpp.sg:sg1:in", (rule4,)) == acl
    assert adapter.dump_acls()[0].rules == (rule4,)
    did("dump_acls")
    assert adapter.reclassifies_sessions() is False  # VPP's default
    did("reclassifies_sessions")
    adapter.set_reclassify_sessions()
    did("set_reclassify_sessions")
    assert adapter.reclassifies_sessions() is True
    adapter.set_etype_whitelist(vhost, (0x0800, 0x86DD), (0x0806,))
    did("set_etype_whitelist")
    assert adapter.dump_etype_whitelists() == {vhost: ((0x0800, 0x86DD), (0x0806,))}
    did("dump_etype_whitelists")
    adapter.set_acl_list(vhost, (acl,), (acl,))
    did("set_acl_list")
    assert adapter.dump_interface_acls()[vhost] == ((acl,), (acl,))
    did("dump_interface_acls")
    mrules = (
        MacipRule(1, "fa:16:3e:00:00:01", "ff:ff:ff:ff:ff:ff", "10.0.0.3/32"),
        MacipRule(1, "fa:16:3e:00:00:01", "ff:ff:ff:ff:ff:ff", "fe80::f816:3eff:fe00:1/128"),
    )
    macip = adapter.macip_add_replace(NO_INDEX, "net-vpp.macip:p1", mrules)
    did("macip_add_replace")
    assert adapter.dump_macips()[0].rules == mrules
    did("dump_macips")
    adapter.macip_bind(vhost, macip)
    did("macip_bind")
    assert adapter.dump_interface_macips() == {vhost: macip}
    did("dump_interface_macips")
    adapter.macip_bind(vhost, macip, bind=False)
    adapter.set_acl_list(vhost, (), ())
    adapter.macip_del(macip)
    did("macip_del")
    made: list[int] = []
    with adapter.batch():  # pipelined on the socket
        adapter.macip_add_replace_then(NO_INDEX, "net-vpp.macip:p2", mrules[:1], made.append)
    did("batch")
    did("macip_add_replace_then")
    assert len(made) == 1 and adapter.dump_macips()[0].rules == mrules[:1]
    adapter.macip_del(made[0])
    # Ports in flight: batches that do not wait, settled later, the connection held.
    later: list[Any] = []
    with adapter.exclusive():
        with adapter.batch(wait=False) as pending:
            adapter.add_vhost_user("/run/vpp/vhu2", False, "fa:16:3e:00:00:02", "p3", later.append)
            adapter.add_default_subif(tap, 4095, later.append)
        adapter.settle(pending)
        with adapter.batch(wait=False) as pending:
            adapter.read_name_and_link(later[0], later.append)
        adapter.settle(pending)
        with adapter.batch():  # a refused request, known before what follows is sent
            adapter.set_mtu(NO_INDEX - 1, 1500)
            with pytest.raises(VppBatchError):
                adapter.checkpoint()
    for name in ("exclusive", "add_vhost_user", "add_default_subif", "settle", "checkpoint"):
        did(name)
    did("read_name_and_link")
    assert later[2] == ("VirtualEthernet0/0/1", False)
    adapter.delete_vhost_user(later[0])
    adapter.delete_subif(later[1])
    adapter.acl_del(acl)
    did("acl_del")
    for itf in (sub, vhost, tap):
        adapter.unset_bridge(itf)
    did("unset_bridge")
    adapter.set_admin_up(vhost, False)
    adapter.delete_vhost_user(vhost)
    did("delete_vhost_user")
    adapter.delete_af_packet("tapabc")
    did("delete_af_packet")
    adapter.delete_subif(sub)
    adapter.delete_subif(guard)
    did("delete_subif")
    adapter.delete_bridge_domain(bd)
    did("delete_bridge_domain")
    adapter.ping()  # its reply comes after every event
    adapter.disconnect()
    did("disconnect")
    return done


def test_every_adapter_operation_speaks_vpp_s_api():
    emu = VppEmulator()
    log = CallLog()
    server = serve(emu, call_log=log)
    try:
        events: list[Any] = []
        done = run_every_adapter_operation(vpp_adapter(server.path, server.api_dir), emu, events)
    finally:
        server.close()
    public = {
        n
        for n, v in inspect.getmembers(VppAdapter)
        if not n.startswith("_") and inspect.isfunction(v)
    }
    assert public == done, f"adapter operations not exercised here: {public - done}"
    served = {name for name, _ in log.take()}
    assert served >= {"sw_interface_dump", "af_packet_create_v3", "acl_add_replace"}
    assert served <= set(emu.requests)
    assert events, "the run caused interface events"


# --- 3. the ACL plugin, through vpp_papi ---
ACL_MESSAGES = """acl_plugin_get_version acl_plugin_control_ping
acl_plugin_get_conn_table_max_entries acl_add_replace acl_del acl_interface_add_del
acl_interface_set_acl_list acl_dump acl_interface_list_dump macip_acl_add
macip_acl_add_replace macip_acl_del macip_acl_interface_add_del macip_acl_dump
macip_acl_interface_get macip_acl_interface_list_dump acl_interface_set_etype_whitelist
acl_interface_etype_whitelist_dump""".split()
RULE = {
    "is_permit": 1,
    "src_prefix": "10.0.0.0/24",
    "dst_prefix": ipaddress.ip_network("2001:db8::/64"),
    "proto": 6,
    "dstport_or_icmpcode_first": 22,
    "dstport_or_icmpcode_last": 22,
}
MACIP_RULE = {
    "is_permit": 1,
    "src_mac": "fa:16:3e:00:00:01",
    "src_mac_mask": "ff:ff:ff:ff:ff:ff",
    "src_prefix": "10.0.0.5/32",
}


def test_the_acl_plugin_s_messages_are_declared(api_json):
    reg = registry()
    assert set(ACL_MESSAGES) <= set(reg.services)
    check_registry(reg, ACL_MESSAGES, api_json)
    assert {"vl_api_acl_rule_t", "vl_api_macip_acl_rule_t", "vl_api_prefix_t"} <= set(
        reg.referenced_types(ACL_MESSAGES)
    )


class Answers:
    """A client's ``api`` that keeps every call's answer, by message."""

    def __init__(self, api: Any) -> None:
        self._api = api
        self.answers: dict[str, list[Any]] = {}

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            answer = getattr(self._api, name)(**kwargs)
            self.answers.setdefault(name, []).append(answer)
            return answer

        return call


@pytest.fixture
def logged(vpp: VppEmulator) -> Any:
    log = CallLog()
    server = serve(vpp, call_log=log)
    yield server, log
    server.close()


def test_acl_traffic_through_vpp_papi(logged: tuple[ApiServer, CallLog]):
    """Representative ACL calls, each answered (dumps with details)."""
    server, log = logged
    api = Answers(server.connect("acl").api)
    any4 = {**RULE, "src_prefix": "0.0.0.0/0", "dst_prefix": "0.0.0.0/0", "proto": 0}
    rules = [
        {**RULE, "is_permit": 2, "dst_prefix": "10.1.0.0/16"},
        {
            **any4,
            "is_permit": 2,
            "proto": 1,
            "srcport_or_icmptype_first": 8,
            "srcport_or_icmptype_last": 8,
            "dstport_or_icmpcode_last": 255,
        },
        {**RULE, "src_prefix": "2001:db8::/64", "proto": 17},
        {
            **RULE,
            "src_prefix": ipaddress.ip_network("::/0"),
            "dst_prefix": "::/0",
            "proto": 58,
            "srcport_or_icmptype_first": 133,
            "srcport_or_icmptype_last": 137,
        },
        {**any4, "is_permit": 0, "tcp_flags_mask": 0x12, "tcp_flags_value": 0x02, "proto": 6},
    ]
    acl = api.acl_add_replace(acl_index=0xFFFFFFFF, tag="net-vpp.sg:1", count=5, r=rules)
    assert acl.retval == 0
    api.acl_add_replace(acl_index=acl.acl_index, tag="net-vpp.sg:1", count=1, r=rules[:1])
    api.acl_add_replace(acl_index=0xFFFFFFFF, count=1, r=[{**RULE, "src_prefix": "10.0.0.1/8"}])
    api.acl_interface_set_acl_list(sw_if_index=1, count=2, n_input=1, acls=[0, 0])
    api.acl_interface_add_del(is_add=True, is_input=False, sw_if_index=1, acl_index=0)
    api.acl_interface_list_dump()
    api.acl_interface_list_dump(sw_if_index=1)
    api.acl_dump(acl_index=0xFFFFFFFF)
    macip_rules = [
        MACIP_RULE,
        {**MACIP_RULE, "src_prefix": ipaddress.ip_network("fe80::f816:3eff:fe00:1/128")},
        {
            **MACIP_RULE,
            "src_mac": b"\x00" * 6,
            "src_mac_mask": "00:00:00:00:00:00",
            "src_prefix": "0.0.0.0/0",
            "is_permit": 0,
        },
    ]
    macip = api.macip_acl_add(tag="net-vpp.port:p1", count=3, r=macip_rules)
    api.macip_acl_add_replace(acl_index=macip.acl_index, count=2, r=macip_rules[:2])
    api.macip_acl_add_replace(count=1, r=macip_rules[2:])
    api.macip_acl_interface_add_del(is_add=True, sw_if_index=1, acl_index=macip.acl_index)
    api.macip_acl_dump()
    api.macip_acl_interface_get()
    api.macip_acl_interface_list_dump(sw_if_index=0xFFFFFFFF)
    api.macip_acl_interface_list_dump(sw_if_index=0)
    api.macip_acl_interface_add_del(is_add=False, sw_if_index=1, acl_index=macip.acl_index)
    api.macip_acl_del(acl_index=1)
    api.acl_interface_set_acl_list(sw_if_index=1, count=0, n_input=0, acls=[])
    api.acl_del(acl_index=0)
    api.acl_plugin_get_version()
    api.acl_plugin_control_ping()
    api.acl_plugin_get_conn_table_max_entries()
    api.acl_interface_set_etype_whitelist(
        sw_if_index=1, count=3, n_input=2, whitelist=[2048, 34525, 2054]
    )
    api.acl_interface_etype_whitelist_dump(sw_if_index=0xFFFFFFFF)
    assert set(api.answers) == set(ACL_MESSAGES)
    assert {name for name, _ in log.take()} == {*ACL_MESSAGES, "control_ping"}  # (ends dumps)
    for name, answers in api.answers.items():
        for answer in answers:
            replies = answer if isinstance(answer, list) else [answer]
            assert replies, f"{name} answered nothing"
            assert all(type(r).__name__.startswith(name.rsplit("_", 1)[0]) for r in replies)

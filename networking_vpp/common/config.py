"""oslo.config options shared by the server and the agent."""

from __future__ import annotations

import socket

from oslo_config import cfg

ETCD_GROUP = "etcd"
AGENT_GROUP = "vpp_agent"
ML2_VPP_GROUP = "ml2_vpp"

etcd_opts = [
    cfg.ListOpt(
        "endpoints",
        default=["http://127.0.0.1:2379"],
        help="etcd client URLs (http:// or https://); the client fails over between them.",
    ),
    cfg.StrOpt("prefix", default="/networking-vpp", help="Root of every networking-vpp key."),
    cfg.StrOpt("ca_cert", help="CA bundle that signs the etcd servers' certificates."),
    cfg.StrOpt("cert_file", help="Client certificate for mutual TLS."),
    cfg.StrOpt("key_file", help="Private key of the client certificate."),
    cfg.StrOpt("username", help="etcd user (token auth through /v3/auth/authenticate)."),
    cfg.StrOpt("password", secret=True, help="Password of the etcd user."),
    cfg.FloatOpt(
        "timeout",
        default=3.0,
        help="Seconds before one etcd request gives up. Must be below a third of every "
        "lease TTL (the agent's alive_ttl, the server's election_ttl): a keepalive that "
        "waits longer could let the lease expire under its holder; a process whose "
        "options break this refuses to start.",
    ),
]

agent_opts = [
    cfg.StrOpt("host", default=socket.gethostname(), help="This host's name, as Nova binds it."),
    cfg.DictOpt(
        "physnets",
        default={},
        help="physnet:VPP-interface pairs, e.g. physnet1:GigabitEthernet0/8/0.",
    ),
    cfg.StrOpt("vpp_api_socket", default="/run/vpp/api.sock", help="VPP's API socket."),
    cfg.StrOpt(
        "vpp_api_dir",
        default="/usr/share/vpp/api",
        help="Directory of the .api.json files of the installed VPP.",
    ),
    cfg.IntOpt("alive_ttl", default=10, help="Seconds the liveness lease survives the agent."),
    cfg.FloatOpt("vpp_ping_interval", default=2.0, help="Seconds between VPP liveness checks."),
    cfg.FloatOpt(
        "vpp_reconnect_interval",
        default=0.2,
        min=0.01,
        help="Seconds between two looks for VPP while it is away (its API socket "
        "accepting a connection; only then is a client made). Constant, not a "
        "backoff: every second waited after a restarted VPP serves is a second all "
        "of this host's ports stay down. A look costs a connect() on a Unix socket, "
        "so shorter brings ports back sooner for next to nothing; longer only saves "
        "a few system calls a second while VPP is down.",
    ),
    cfg.FloatOpt(
        "link_refresh_interval",
        default=60.0,
        min=1.0,
        help="Seconds between re-reads of every port's link state from VPP (heals a lost event).",
    ),
    cfg.StrOpt(
        "vhostuser_socket_dir",
        default="/run/vpp/vhostuser",
        help="Directory of the vhost-user sockets, as the server's [ml2_vpp] "
        "vhostuser_socket_dir. A vhost-user binding must name the port's socket in it "
        "(<dir>/vhu<port_id[:11]>), or the port is reported in error and VPP never sees "
        "the path (VPP, as root, unlinks whatever is there). The agent makes it (with "
        "its parents) at start and at every resync, with vhostuser_socket_group and "
        "vhostuser_socket_mode; if it cannot, vhost-user ports are reported in error "
        "with the reason. Empty: this host takes no vhost-user ports (tap only).",
    ),
    cfg.StrOpt(
        "vhostuser_socket_group",
        default="libvirt-qemu",
        help="Group given the socket directory: the group libvirt runs QEMU as "
        "('libvirt-qemu' on Debian and Ubuntu, 'qemu' on RHEL and Fedora), which must "
        "create its sockets there when QEMU is the socket server. Empty: left as it is.",
    ),
    cfg.StrOpt(
        "vhostuser_socket_mode",
        default="2770",
        regex=r"^[0-7]{3,4}$",
        help="Octal mode of the socket directory. The default lets its group create "
        "sockets, and setgid gives them the directory's group.",
    ),
    cfg.StrOpt(
        "vhostuser_rx_mode",
        default="adaptive",
        choices=["polling", "interrupt", "adaptive"],
        help="Mode of the receive queues of vhost-user ports in VPP (set once the VM "
        "has started them). 'polling': VPP's own default, the lowest latency, but "
        "every queue is polled whether or not anything comes: an idle VPP used 14 % "
        "of a core at 1,000 ports and 34 % at 3,000. 'interrupt': no cost at idle, "
        "but each burst waits for the guest's kick and VPP's wake-up, which adds "
        "latency and per-packet work under load. 'adaptive' (the default): "
        "interrupt while a queue is quiet, polling while traffic flows, so idle ports "
        "cost nothing and busy ones lose nothing; it switches after the traffic "
        "changes, so the first packets of a burst see interrupt latency.",
    ),
    cfg.BoolOpt(
        "report_before_vm_connects",
        default=False,
        help="Report a vhost-user port active before QEMU connects (for tests without VMs).",
    ),
    cfg.BoolOpt(
        "watch_tap_devices",
        default=True,
        help="Watch the kernel's link events (netlink) for tap ports' devices: attach a "
        "device when it appears, detach when it goes, re-attach one made again under its "
        "name, and report a port whose device is missing down with the reason. Off, a tap "
        "port's attachment is retried until its device exists, and a device that goes "
        "or is made again goes unnoticed (VPP keeps it link-up). Hosts without tap ports "
        "may turn it off.",
    ),
    cfg.IntOpt(
        "bridge_mac_age",
        default=5,
        min=0,
        max=255,
        help="Minutes after which a MAC learnt in a network's bridge domain is forgotten "
        "unless seen again (VPP's mac_age; 0: never). Set when the agent makes the bridge "
        "domain.",
    ),
    cfg.IntOpt(
        "bridge_learn_limit",
        default=65536,
        min=0,
        help="At most this many MACs are learnt in one network's bridge domain (frames "
        "from further MACs are forwarded, not learnt), so that one port without port "
        "security cannot fill the host's L2 table. Count the network's MACs on every host "
        "(the uplink learns remote ones too). Set when the agent makes the bridge domain; "
        "0: VPP's default (16 Mi).",
    ),
    cfg.IntOpt(
        "vpp_main_heap_mb",
        default=1024,
        min=1,
        help="VPP's main heap in MB, as its startup.conf sets it (memory { main-heap-size }; "
        "VPP's default is 1 GiB). Each port with port security takes about 146 KB of it "
        "(its MACIP ACL's classifier tables), and 18 of the host's vm.max_map_count memory "
        "maps: the agent warns at 80 % of either and reports further ports in error, with "
        "the fix, rather than letting VPP abort.",
    ),
]


def register_etcd_opts(conf: cfg.ConfigOpts) -> None:
    """Register the [etcd] options."""
    conf.register_opts(etcd_opts, ETCD_GROUP)


def register_agent_opts(conf: cfg.ConfigOpts) -> None:
    """Register everything the agent reads."""
    register_etcd_opts(conf)
    conf.register_opts(agent_opts, AGENT_GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """For oslo-config-generator."""
    return [(ETCD_GROUP, etcd_opts), (AGENT_GROUP, agent_opts)]

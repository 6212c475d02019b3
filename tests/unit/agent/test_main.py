"""vpp-agent's start-up: options into settings."""

from __future__ import annotations

from oslo_config import cfg

from networking_vpp.agent.main import settings_from_conf
from networking_vpp.common import config


def test_agent_options_reach_its_settings(tmp_path):
    conf_file = tmp_path / "agent.conf"
    conf_file.write_text(
        "[vpp_agent]\n"
        "host = compute-7\n"
        "physnets = physnet1:GigabitEthernet0/8/0\n"
        "vpp_ping_interval = 0.5\n"
        "link_refresh_interval = 30\n"
        "vhostuser_socket_dir = /run/vpp/vhu\n"
        "vhostuser_socket_group = qemu\n"
        "vhostuser_socket_mode = 0750\n"
        "[etcd]\n"
        "prefix = /nvpp\n"
    )
    conf = cfg.ConfigOpts()
    config.register_agent_opts(conf)
    conf(["--config-file", str(conf_file)], project="networking-vpp")
    settings = settings_from_conf(conf)
    assert settings.host == "compute-7"
    assert settings.physnets == {"physnet1": "GigabitEthernet0/8/0"}
    assert settings.prefix == "/nvpp"
    assert settings.vpp_ping_interval == 0.5
    assert settings.link_refresh_interval == 30.0
    assert settings.vhostuser_socket_dir == "/run/vpp/vhu"
    assert (settings.vhostuser_socket_group, settings.vhostuser_socket_mode) == ("qemu", 0o750)

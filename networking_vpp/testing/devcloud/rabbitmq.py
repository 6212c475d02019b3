"""A private RabbitMQ for the RPC of Neutron's own agents (DHCP, metadata, L3).

Debian's ``rabbitmq-server``, run as the current user from its library
scripts (not the ``/usr/sbin`` wrapper, which switches to the ``rabbitmq``
user and the system's data directory). Everything is private to the dev
cloud and bound to loopback:

* its own node name (``devcloud-<hash of the directory>@localhost``), Erlang
  cookie (``$HOME`` is a directory of ours, where Erlang makes the cookie),
  Mnesia data, configuration and log under ``rabbitmq/``;
* AMQP on ``127.0.0.1:<amqp>``, the Erlang distribution on
  ``127.0.0.1:<dist>``, and an ``epmd`` of its own on ``127.0.0.1:<epmd>``
  (started here, so that nothing outlives ``down``, and never the machine's
  shared one on 4369);
* one scheduler without busy-waiting: the machine's CPUs are shared.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from networking_vpp.testing.devcloud import procs
from networking_vpp.testing.devcloud.layout import Layout

NAME = "rabbitmq"
EPMD = "epmd"
SCRIPTS = Path("/usr/lib/rabbitmq/bin")
USER = "guest"  # RabbitMQ's default user, allowed from loopback only
PASSWORD = "guest"


def available() -> bool:
    """Whether Debian's rabbitmq-server (and Erlang's epmd) are installed."""
    return (SCRIPTS / "rabbitmq-server").exists() and shutil.which("epmd") is not None


def node_name(layout: Layout) -> str:
    """The node's private name: one per dev cloud directory."""
    digest = hashlib.sha256(str(layout.base).encode()).hexdigest()[:8]
    return f"devcloud-{digest}@localhost"


def transport_url(amqp_port: int) -> str:
    """oslo.messaging's URL of this broker."""
    return f"rabbit://{USER}:{PASSWORD}@127.0.0.1:{amqp_port}/"


def environment(layout: Layout, amqp_port: int, dist_port: int, epmd_port: int) -> dict[str, str]:
    """The environment RabbitMQ's scripts (and Erlang) read."""
    base = layout.rabbitmq_dir
    env = dict(os.environ)
    env.update(
        HOME=str(base / "home"),  # Erlang's cookie lives in $HOME/.erlang.cookie
        RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),  # not /etc/rabbitmq's
        RABBITMQ_CONFIG_FILE=str(base / "rabbitmq"),  # .conf appended by RabbitMQ
        RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
        RABBITMQ_NODENAME=node_name(layout),
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(amqp_port),
        RABBITMQ_DIST_PORT=str(dist_port),
        RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
        RABBITMQ_LOG_BASE=str(layout.logs),
        RABBITMQ_LOGS="-",  # to stdout: our log file
        RABBITMQ_PID_FILE=str(base / "beam.pid"),
        ERL_EPMD_ADDRESS="127.0.0.1",
        ERL_EPMD_PORT=str(epmd_port),
        # The distribution listener on loopback too; one scheduler, no busy-waiting.
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
            "-kernel inet_dist_use_interface {127,0,0,1} "
            "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none"
        ),
    )
    return env


def write_config(layout: Layout, amqp_port: int) -> None:
    """The (empty) env file, the configuration and the plugin list."""
    base = layout.rabbitmq_dir
    for path in (base, base / "home", base / "mnesia"):
        path.mkdir(parents=True, exist_ok=True)
    (base / "rabbitmq-env.conf").write_text("# the dev cloud sets everything in the environment\n")
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{amqp_port}\n"
        "loopback_users.guest = true\n"
        "log.console = true\n"
        "log.file = false\n"
    )
    (base / "advanced.config").write_text("[].\n")
    (base / "enabled_plugins").write_text("[].\n")


def start(
    layout: Layout,
    amqp_port: int,
    dist_port: int,
    epmd_port: int,
    die_with_parent: bool = False,
) -> procs.Daemon:
    """Start epmd and RabbitMQ; :func:`wait_ready` waits for the broker (it boots in
    a few seconds, which the dev cloud spends starting the rest)."""
    if not available():
        raise procs.DevCloudError("rabbitmq-server not found: install the Debian package")
    write_config(layout, amqp_port)
    env = environment(layout, amqp_port, dist_port, epmd_port)
    epmd_bin = shutil.which("epmd") or "epmd"
    epmd = procs.spawn(
        EPMD,
        [epmd_bin, "-address", "127.0.0.1", "-port", str(epmd_port)],
        layout.pid_file(EPMD),
        layout.log_file(EPMD),
        env=env,
        die_with_parent=die_with_parent,
    )
    procs.wait_until(lambda: procs.port_open(epmd_port), 10.0, "epmd to listen", alive=epmd.died)
    return procs.spawn(
        NAME,
        [str(SCRIPTS / "rabbitmq-server")],
        layout.pid_file(NAME),
        layout.log_file(NAME),
        env=env,
        die_with_parent=die_with_parent,
    )


def wait_ready(amqp_port: int, daemon: procs.Daemon, timeout: float = 60.0) -> None:
    """Wait until the broker accepts an AMQP login."""
    procs.wait_until(
        lambda: amqp_login(amqp_port), timeout, "RabbitMQ to accept AMQP", 0.2, daemon.died
    )


def kombu_connection(amqp_port: int) -> Any:
    """A kombu connection to the broker (oslo.messaging's AMQP library)."""
    import kombu

    return kombu.Connection(f"amqp://{USER}:{PASSWORD}@127.0.0.1:{amqp_port}//", connect_timeout=2)


def amqp_login(amqp_port: int) -> bool:
    """Whether the broker completes an AMQP handshake and login."""
    with kombu_connection(amqp_port) as conn:
        conn.connect()
        return bool(conn.connected)


def queue_consumers(amqp_port: int, queue: str) -> int:
    """How many consumers ``queue`` has (0 while it does not exist)."""
    import amqp  # py-amqp, kombu's transport

    with kombu_connection(amqp_port) as conn:
        channel = conn.channel()
        try:
            _name, _messages, consumers = channel.queue_declare(queue, passive=True)
        except amqp.exceptions.NotFound:
            return 0
        return int(consumers)


def stop(layout: Layout) -> bool:
    """Stop RabbitMQ (SIGTERM: Erlang's orderly shutdown), then its epmd."""
    stopped = procs.stop(layout.pid_file(NAME), timeout=30.0)
    stopped = procs.stop(layout.pid_file(EPMD), timeout=5.0) or stopped
    return stopped

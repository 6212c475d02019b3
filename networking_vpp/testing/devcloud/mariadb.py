"""A private MariaDB for Neutron: own datadir, unix socket, loopback port.

Nothing of the machine's own MariaDB is used: no config file is read
(``--no-defaults``), the data live under the dev cloud's directory, and the
server listens on 127.0.0.1 only. Durability is traded for speed (no binlog,
no flush per commit): this database holds throw-away test data.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess

from networking_vpp.testing.devcloud import procs
from networking_vpp.testing.devcloud.layout import Layout

DB_NAME = "neutron"
DB_USER = "neutron"
DB_PASSWORD = "devcloud"
NAME = "mariadb"


def _binary(name: str) -> str:
    # Debian puts mariadbd in /usr/sbin, which is not on every user's PATH.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        raise procs.DevCloudError(f"{name} not found: install the Debian package mariadb-server")
    return found


def available() -> bool:
    """Whether the MariaDB server binaries are installed."""
    try:
        _binary("mariadbd")
        _binary("mariadb-install-db")
    except procs.DevCloudError:
        return False
    return True


def connection_url(layout: Layout) -> str:
    """SQLAlchemy URL Neutron uses: PyMySQL over the unix socket."""
    return (
        f"mysql+pymysql://{DB_USER}:{DB_PASSWORD}@localhost/{DB_NAME}"
        f"?unix_socket={layout.mariadb_socket}&charset=utf8mb4"
    )


def connect(layout: Layout, user: str = "root", database: str | None = None):  # noqa: ANN201
    """A PyMySQL connection over the private socket (autocommit)."""
    import pymysql  # late: only the server side and the tests need it

    password = "" if user == "root" else DB_PASSWORD
    return pymysql.connect(
        unix_socket=str(layout.mariadb_socket),
        user=user,
        password=password,
        database=database,
        autocommit=True,
        connect_timeout=2,
    )


def _initialise(layout: Layout) -> None:
    datadir = layout.mariadb_data
    if (datadir / "mysql").is_dir():
        return
    datadir.mkdir(parents=True, exist_ok=True)
    log = layout.log_file("mariadb-install-db")
    with open(log, "ab") as out:
        result = subprocess.run(
            [
                _binary("mariadb-install-db"),
                "--no-defaults",
                f"--datadir={datadir}",
                f"--user={getpass.getuser()}",
                "--auth-root-authentication-method=normal",  # root without password
                "--skip-test-db",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        raise procs.DevCloudError(f"mariadb-install-db failed, see {log}")


def start(layout: Layout, port: int, timeout: float = 60.0, die_with_parent: bool = False) -> None:
    """Initialise the datadir if needed, start mariadbd, create Neutron's DB and user."""
    _initialise(layout)
    pid_file = layout.pid_file(NAME)
    daemon = procs.spawn(
        NAME,
        [
            _binary("mariadbd"),
            "--no-defaults",
            f"--datadir={layout.mariadb_data}",
            f"--socket={layout.mariadb_socket}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--user={getpass.getuser()}",
            f"--pid-file={pid_file}",  # the same file: mariadbd removes it when it stops
            "--skip-log-bin",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=128M",
            "--innodb-flush-log-at-trx-commit=0",
            "--max-connections=200",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
        ],
        pid_file,
        layout.log_file(NAME),
        die_with_parent=die_with_parent,
    )

    procs.wait_until(
        lambda: _ping(layout),
        timeout,
        "MariaDB to accept connections",
        alive=daemon.died,
    )
    _bootstrap(layout)


def _ping(layout: Layout) -> bool:
    conn = connect(layout)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        return True
    finally:
        conn.close()


def _bootstrap(layout: Layout) -> None:
    conn = connect(layout)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {DB_NAME} CHARACTER SET utf8mb4")
            for host in ("localhost", "127.0.0.1"):
                cur.execute(
                    f"CREATE USER IF NOT EXISTS '{DB_USER}'@'{host}' IDENTIFIED BY %s",
                    (DB_PASSWORD,),
                )
                cur.execute(f"GRANT ALL PRIVILEGES ON {DB_NAME}.* TO '{DB_USER}'@'{host}'")
    finally:
        conn.close()


def stop(layout: Layout) -> bool:
    """Stop mariadbd (it flushes and exits on SIGTERM)."""
    return procs.stop(layout.pid_file(NAME), timeout=30.0)

#!/usr/bin/env bash
# A dev cloud in one command: installs what is missing (Debian mariadb-server,
# etcd-server, rabbitmq-server, dnsmasq-base, haproxy, iptables, udhcpc; the venv .venv with
# `pip install -e '.[test]'`, as .ci/run does), then starts MariaDB, etcd, RabbitMQ, a
# fake Nova, Neutron's API (uWSGI, noauth, ML2 'vpp') and RPC server, two fake compute
# hosts (emulated VPP + the real agent), Neutron's DHCP and metadata agents on
# compute-1 (--l3: the L3 agent too), and runs the tour.
#
#   tools/devcloud/up.sh [--no-tour] [--debug] [--l3] [--no-agents]
#   PYTHON=/path/to/venv/bin/python tools/devcloud/up.sh     # use that venv as it is
#
# Everything lives in .devcloud/ (PID files, logs, data); tools/devcloud/down.sh stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."

tour=1
args=()
for arg in "$@"; do
    case "$arg" in
        --no-tour) tour=0 ;;
        *) args+=("$arg") ;;
    esac
done

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if ! have etcd || ! have mariadbd || [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ] \
    || ! have dnsmasq || ! have haproxy || ! have iptables || ! have udhcpc; then
    echo "devcloud: installing etcd-server, mariadb-server, rabbitmq-server, dnsmasq-base," \
        "haproxy, iptables and udhcpc (apt)"
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_ apt-get update -qq
    $sudo_ apt-get install -y -qq etcd-server mariadb-server rabbitmq-server dnsmasq-base \
        haproxy iptables udhcpc >/dev/null
    # The packages start system-wide services; the dev cloud runs its own private ones.
    $sudo_ systemctl disable --now etcd mariadb rabbitmq-server haproxy >/dev/null 2>&1 || true
fi

if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
else
    if [ ! -x .venv/bin/python ]; then
        echo "devcloud: creating .venv"
        python3 -m venv .venv
    fi
    PY=.venv/bin/python
    if ! "$PY" -c 'import networking_vpp, neutron, openstack, pymysql' 2>/dev/null \
        || [ ! -x .venv/bin/uwsgi ]; then
        echo "devcloud: installing networking-vpp[test] into .venv (a few minutes the first time)"
        .venv/bin/pip install -q --upgrade pip
        .venv/bin/pip install -q -e '.[test]'
    fi
fi

# Neutron's agents make namespaces and veths, and run dnsmasq and haproxy in them.
if [ "$(id -u)" -ne 0 ] && [[ ! " ${args[*]} " =~ " --no-agents " ]]; then
    echo "devcloud: Neutron's DHCP/metadata/L3 agents need root (or pass --no-agents)" >&2
    exit 2
fi
"$PY" -m networking_vpp.testing.devcloud up "${args[@]}"
if [ "$tour" = 1 ]; then
    "$PY" tools/devcloud/tour.py
fi
echo
state="${DEVCLOUD_DIR:-.devcloud}/cloud.json"
echo "devcloud: running. Neutron: $("$PY" -c 'import json, sys; print("http://127.0.0.1:%d" % json.load(open(sys.argv[1]))["neutron"])' "$state")"
echo "devcloud: a shell for it: eval \"\$($PY -m networking_vpp.testing.devcloud env)\""
echo "devcloud: stop it with tools/devcloud/down.sh (--purge also deletes .devcloud/)"

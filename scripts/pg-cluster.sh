#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests (watermark-postgres, the HA race), in a directory
# of its own, listening on 127.0.0.1 on a free port, with a random password.
#
#   scripts/pg-cluster.sh start DIR        initdb + start; prints the connection URL on stdout
#   scripts/pg-cluster.sh stop DIR         stops it (fast), if it runs
#   scripts/pg-cluster.sh ctl DIR ARGS...  pg_ctl -D DIR/data ARGS... (e.g. stop -m immediate)
#
# PostgreSQL refuses to run as root, so as root everything runs as the `postgres` system user
# that Debian's package creates (DIR is handed to it); otherwise as the caller. The server
# binaries come from Debian's postgresql package (/usr/lib/postgresql/*/bin), else from PATH.
# fsync stays on: the tests check durability, not speed.
set -euo pipefail

usage() { echo "usage: scripts/pg-cluster.sh start|stop DIR | ctl DIR ARGS..." >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1 dir=$2
shift 2

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  bin=$(dirname "$(command -v initdb 2>/dev/null || command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")
fi
[ -x "$bin/pg_ctl" ] || { echo "PostgreSQL server binaries not found: run scripts/ensure-deps.sh --with-postgres" >&2; exit 1; }

as_owner() { # runs "$@" as the cluster's user
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
    || echo $((20000 + RANDOM % 30000))
}

case "$action" in
  start)
    [ -d "$dir" ] || usage
    if [ "$(id -u)" -eq 0 ]; then
      getent passwd postgres >/dev/null || { echo "as root the cluster runs as the user postgres, which does not exist (install Debian's postgresql package)" >&2; exit 1; }
      chown postgres: "$dir"
    fi
    chmod 700 "$dir"
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    as_owner sh -c "umask 077; printf '%s\n' '$password' > '$dir/pwfile'"
    as_owner "$bin/initdb" -D "$dir/data" -U tezos_hsm --pwfile="$dir/pwfile" --auth=scram-sha-256 \
      -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
      || { echo "initdb failed (see $dir/initdb.log): $(tail -1 "$dir/initdb.log")" >&2; exit 1; }
    as_owner rm -f "$dir/pwfile"
    cat <<EOF | as_owner sh -c "cat >> '$dir/data/postgresql.conf'"
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_buffers = 16MB
max_connections = 60
fsync = on
logging_collector = off
EOF
    for _ in 1 2 3 4 5; do
      port=$(free_port)
      echo "port = $port" | as_owner sh -c "cat >> '$dir/data/postgresql.conf'"
      if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null 2>&1; then
        echo "postgres://tezos_hsm:$password@127.0.0.1:$port/postgres"
        exit 0
      fi
    done
    echo "PostgreSQL did not start (see $dir/server.log): $(tail -1 "$dir/server.log" 2>/dev/null)" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    ;;
  ctl)
    as_owner "$bin/pg_ctl" -D "$dir/data" "$@"
    ;;
  *) usage ;;
esac

#!/usr/bin/env bash
# PgBouncer in transaction mode in front of the machine's PostgreSQL, for the pooler tests
# (test/**/*.pgbouncer.test.ts): the way RDS Proxy or a managed PgBouncer will sit in front of the database.
#
#   scripts/pgbouncer.sh install           fetch Debian's package and unpack it (no service is installed or started)
#   eval "$(scripts/pgbouncer.sh start)"   start it and export PGBOUNCER_URL for the tests
#   scripts/pgbouncer.sh stop              stop it and delete its folder
#
# Settings: PGBOUNCER_DIR (default /tmp/shutter-pgbouncer), PGBOUNCER_PORT (default 6432), PGBOUNCER_PREFIX
# (where the package is unpacked, default /opt/shutter-pgbouncer), PG_HOST/PG_PORT (the server, 127.0.0.1:5432).
set -euo pipefail

DIR="${PGBOUNCER_DIR:-/tmp/shutter-pgbouncer}"
PORT="${PGBOUNCER_PORT:-6432}"
PREFIX="${PGBOUNCER_PREFIX:-/opt/shutter-pgbouncer}"
BIN="$PREFIX/usr/sbin/pgbouncer"

log() { echo "[pgbouncer] $*" >&2; }

stop() {
  [ -f "$DIR/pgbouncer.pid" ] && kill "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null || true
  sleep 0.5
  rm -rf "$DIR"
}

case "${1:-}" in
  install)
    if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
      log "already installed: $("$BIN" --version | head -1)"
      exit 0
    fi
    apt-get update -qq
    # Its libraries only: the package itself is unpacked, so no system service starts on the default port.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libc-ares2 libevent-2.1-7 >&2
    work="$(mktemp -d)"
    (cd "$work" && apt-get download pgbouncer >&2 2>/dev/null)
    mkdir -p "$PREFIX"
    dpkg -x "$work"/pgbouncer_*.deb "$PREFIX"
    rm -rf "$work"
    log "installed: $("$BIN" --version | head -1)"
    ;;
  start)
    stop
    mkdir -p "$DIR"
    # Any database name is passed through to the server (each test file has its own database); a small
    # server-side pool, shared by every client, in transaction mode.
    cat > "$DIR/pgbouncer.ini" <<CONF
[databases]
* = host=${PG_HOST:-127.0.0.1} port=${PG_PORT:-5432} user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 4
max_client_conn = 200
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
pidfile = $DIR/pgbouncer.pid
logfile = $DIR/pgbouncer.log
CONF
    # It refuses to run as root: as root, it drops to an unprivileged user after start.
    if [ "$(id -u)" = 0 ]; then
      echo "user = nobody" >> "$DIR/pgbouncer.ini"
      chown nobody "$DIR"
    fi
    "$BIN" -d "$DIR/pgbouncer.ini" || { cat "$DIR/pgbouncer.log" >&2; exit 1; }
    for _ in $(seq 40); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        log "ready on 127.0.0.1:$PORT (transaction mode)"
        echo "export PGBOUNCER_URL=postgresql://postgres@127.0.0.1:$PORT/postgres"
        exit 0
      fi
      sleep 0.25
    done
    log "did not start (log: $DIR/pgbouncer.log)"
    exit 1
    ;;
  stop)
    stop
    log "stopped"
    ;;
  *)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# A PostgreSQL primary with a streaming standby, from the machine's PostgreSQL binaries, for the replica tests
# (test/**/*.replica.test.ts): reads on a real replica under real replication lag, the way RDS read replicas and
# Aurora readers sit behind a primary.
#
#   eval "$(scripts/pg-replica.sh start)"   start both and export REPLICA_PRIMARY_URL and REPLICA_STANDBY_URL
#   scripts/pg-replica.sh stop              stop both and delete their folders
#   scripts/pg-replica.sh pause|resume      pause or resume the standby's replay (lag on purpose)
#   scripts/pg-replica.sh kill|revive       stop or start the standby (a replica that dies)
#
# Settings: PG_REPLICA_DIR (default /tmp/shutter-pg-replica), PG_REPLICA_PORT (the primary's; the standby takes
# the next one; default 5433), PG_BIN (default: the newest /usr/lib/postgresql/*/bin).
set -euo pipefail

DIR="${PG_REPLICA_DIR:-/tmp/shutter-pg-replica}"
PRIMARY_PORT="${PG_REPLICA_PORT:-5433}"
STANDBY_PORT=$((PRIMARY_PORT + 1))
BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}"

log() { echo "[pg-replica] $*" >&2; }

# PostgreSQL refuses to run as root: as root, the pair runs as the `postgres` user, in a folder it owns.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/bash -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

ctl() { as_pg "$BIN/pg_ctl" -D "$DIR/$1" -l "$DIR/$1.log" -w -t 30 "${@:2}" >&2; }

stop() {
  for node in standby primary; do
    [ -f "$DIR/$node/postmaster.pid" ] && ctl "$node" stop -m immediate || true
  done
  rm -rf "$DIR"
}

psql_on() { "$BIN/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atqc "$2"; }

case "${1:-}" in
  start)
    stop
    mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR"
    as_pg "$BIN/initdb" -D "$DIR/primary" -U postgres --auth=trust >/dev/null
    cat >> "$DIR/primary/postgresql.conf" <<CONF
port = $PRIMARY_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
wal_level = replica
max_wal_senders = 4
max_connections = 200
fsync = off
full_page_writes = off
CONF
    echo "host replication all 127.0.0.1/32 trust" >> "$DIR/primary/pg_hba.conf"
    ctl primary start
    as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$DIR/standby" -R -X stream >&2
    cat >> "$DIR/standby/postgresql.conf" <<CONF
port = $STANDBY_PORT
hot_standby = on
hot_standby_feedback = on
CONF
    ctl standby start
    for _ in $(seq 50); do
      [ "$(psql_on "$STANDBY_PORT" 'select pg_is_in_recovery()' 2>/dev/null)" = t ] && break
      sleep 0.2
    done
    log "ready: primary on 127.0.0.1:$PRIMARY_PORT, streaming standby on 127.0.0.1:$STANDBY_PORT"
    echo "export REPLICA_PRIMARY_URL=postgresql://postgres@127.0.0.1:$PRIMARY_PORT/postgres"
    echo "export REPLICA_STANDBY_URL=postgresql://postgres@127.0.0.1:$STANDBY_PORT/postgres"
    ;;
  stop)
    stop
    log "stopped"
    ;;
  pause)
    psql_on "$STANDBY_PORT" 'select pg_wal_replay_pause()' >/dev/null
    log "standby replay paused"
    ;;
  resume)
    psql_on "$STANDBY_PORT" 'select pg_wal_replay_resume()' >/dev/null
    log "standby replay resumed"
    ;;
  kill)
    ctl standby stop -m immediate
    ;;
  revive)
    ctl standby start
    ;;
  *)
    echo "usage: $0 start|stop|pause|resume|kill|revive" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# A real S3 implementation for the upload tests: a throwaway single-node Ceph cluster (one monitor, one OSD on
# the in-memory object store) with a RADOS Gateway. Unlike the embedded dev server, it checks signatures,
# signed headers and expiry of presigned URLs.
#
#   scripts/ceph-s3.sh install        apt-get the Debian packages (root; done by .ci/run)
#   eval "$(scripts/ceph-s3.sh start)"   start it (about 15 s) and export the S3_* settings for the tests
#   scripts/ceph-s3.sh stop           stop it and delete its folder
#
# Settings: CEPH_S3_DIR (default /tmp/shutter-ceph), CEPH_S3_PORT (default 7480), CEPH_MON_PORT (default 6789).
set -euo pipefail

DIR="${CEPH_S3_DIR:-/tmp/shutter-ceph}"
PORT="${CEPH_S3_PORT:-7480}"
MON_PORT="${CEPH_MON_PORT:-6789}"
CONF="$DIR/ceph.conf"
ACCESS_KEY="shutter-test-access"
SECRET_KEY="shutter-test-secret"
BUCKET="shutter-test"

log() { echo "[ceph-s3] $*" >&2; }
trap 'log "failed at line $LINENO (logs in $DIR/log)"' ERR

wait_for() {
  local what="$1" tries="$2"; shift 2
  for _ in $(seq "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "timed out waiting for $what (logs in $DIR/log)"
  exit 1
}

stop() {
  for pidfile in "$DIR"/run/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  # Daemons of a start that failed before writing their pid file: found by the configuration they run with. A
  # monitor left alive would answer the next start's OSD with its own fsid ("wrong fsid").
  pkill -f -- "-c $CONF" 2>/dev/null || true
  for _ in $(seq 20); do
    pgrep -f -- "-c $CONF" >/dev/null || break
    sleep 0.5
  done
  pkill -9 -f -- "-c $CONF" 2>/dev/null || true
  for pidfile in "$DIR"/run/*.pid; do
    [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$DIR"
}

case "${1:-}" in
  install)
    if command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null; then
      log "already installed: $(ceph --version)"
      exit 0
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ceph-mon ceph-osd radosgw uuid-runtime >&2
    log "installed: $(ceph --version)"
    ;;
  start)
    stop
    mkdir -p "$DIR/run" "$DIR/log" "$DIR/mon/a" "$DIR/osd/0"
    FSID="$(uuidgen)"
    cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon host = 127.0.0.1:$MON_PORT
auth cluster required = none
auth service required = none
auth client required = none
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$cluster-\$name.asok
log file = $DIR/log/\$cluster-\$name.log
mon data = $DIR/mon/\$id
osd data = $DIR/osd/\$id
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT
EOF
    log "starting the monitor"
    monmaptool --create --add a "127.0.0.1:$MON_PORT" --fsid "$FSID" "$DIR/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap"
    ceph-mon -c "$CONF" -i a
    wait_for "the monitor" 60 ceph -c "$CONF" -s
    log "starting the OSD"
    ceph -c "$CONF" osd create >/dev/null
    ceph-osd -c "$CONF" -i 0 --mkfs 2>/dev/null
    ceph -c "$CONF" osd crush add osd.0 1.0 root=default >/dev/null 2>&1
    ceph-osd -c "$CONF" -i 0
    wait_for "the OSD" 120 sh -c "ceph -c '$CONF' osd stat | grep -q '1 up'"
    log "starting the RADOS Gateway on 127.0.0.1:$PORT"
    radosgw -c "$CONF" -n client.rgw.a
    # Up to two minutes: on a machine still busy (CI, right after npm ci) the gateway has taken over one.
    wait_for "the gateway" 240 curl -sf "http://127.0.0.1:$PORT"
    radosgw-admin -c "$CONF" user create --uid=shutter --display-name=Shutter \
      --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >/dev/null
    log "ready"
    cat <<EOF
export S3_ENDPOINT=http://127.0.0.1:$PORT
export S3_BUCKET=$BUCKET
export S3_REGION=us-east-1
export S3_FORCE_PATH_STYLE=true
export S3_ACCESS_KEY_ID=$ACCESS_KEY
export S3_SECRET_ACCESS_KEY=$SECRET_KEY
export S3_ENFORCES_SIGNATURES=true
EOF
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

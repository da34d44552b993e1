#!/usr/bin/env bash
# A Redis Cluster from the machine's redis-server, for the cluster tests (test/**/*.cluster.test.ts and the
# `cluster` project, which runs every Redis-touching test file against it): three masters with one replica each,
# the shape of ElastiCache's cluster mode and of ElastiCache Serverless (which is cluster mode only).
#
#   eval "$(scripts/redis-cluster.sh start)"   start it and export REDIS_CLUSTER_URL (and its other nodes,
#                                              REDIS_CLUSTER_OTHER_NODES) for the tests
#   scripts/redis-cluster.sh stop              stop it and delete its folder
#   scripts/redis-cluster.sh kill PORT         SIGKILL one node (a master dying: its replica takes over)
#   scripts/redis-cluster.sh revive PORT       start that node again (it rejoins, as a replica of its successor)
#
# Settings: REDIS_CLUSTER_DIR (default /tmp/shutter-redis-cluster), REDIS_CLUSTER_PORT (the first of six
# consecutive ports, default 7000), REDIS_CLUSTER_NODE_TIMEOUT (ms before a silent master is failed over,
# default 1000: short, so a failover test takes seconds; ElastiCache's is 15 s).
set -euo pipefail

DIR="${REDIS_CLUSTER_DIR:-/tmp/shutter-redis-cluster}"
FIRST="${REDIS_CLUSTER_PORT:-7000}"
TIMEOUT="${REDIS_CLUSTER_NODE_TIMEOUT:-1000}"
PORTS=$(seq "$FIRST" $((FIRST + 5)))

log() { echo "[redis-cluster] $*" >&2; }

stop() {
  for port in $PORTS; do
    [ -f "$DIR/$port/redis.pid" ] && kill -9 "$(cat "$DIR/$port/redis.pid")" 2>/dev/null || true
  done
  sleep 0.3
  rm -rf "$DIR"
}

node() {
  mkdir -p "$DIR/$1"
  redis-server --port "$1" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file "$DIR/$1/nodes.conf" --cluster-node-timeout "$TIMEOUT" \
    --dir "$DIR/$1" --pidfile "$DIR/$1/redis.pid" --logfile "$DIR/$1/redis.log" \
    --daemonize yes --save '' --appendonly no >&2
}

case "${1:-}" in
  start)
    stop
    for port in $PORTS; do node "$port"; done
    for port in $PORTS; do
      for _ in $(seq 40); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    # shellcheck disable=SC2046
    redis-cli --cluster create $(for port in $PORTS; do echo "127.0.0.1:$port"; done) \
      --cluster-replicas 1 --cluster-yes >/dev/null
    for _ in $(seq 100); do
      if redis-cli -p "$FIRST" cluster info 2>/dev/null | grep -q 'cluster_state:ok' &&
        [ "$(redis-cli -p "$FIRST" cluster nodes | grep -c slave)" = 3 ]; then
        log "ready: 3 masters with a replica each on 127.0.0.1:$FIRST-$((FIRST + 5))"
        echo "export REDIS_CLUSTER_URL=redis://127.0.0.1:$FIRST"
        # The other nodes, for an instance to start from while the first one is down (a failover test kills it):
        # the cluster projects pass them as REDIS_CLUSTER_NODES (vitest.config.ts).
        echo "export REDIS_CLUSTER_OTHER_NODES=$(for port in $PORTS; do [ "$port" = "$FIRST" ] || printf '127.0.0.1:%s,' "$port"; done | sed 's/,$//')"
        exit 0
      fi
      sleep 0.2
    done
    log "did not become ready (logs: $DIR/*/redis.log)"
    exit 1
    ;;
  stop)
    stop
    log "stopped"
    ;;
  kill)
    kill -9 "$(cat "$DIR/$2/redis.pid")"
    log "killed the node on port $2"
    ;;
  revive)
    node "$2"
    # Back once the cluster is whole and the node holds a copy of its new master: a replica still syncing cannot
    # take over, and the next failover (the next test) would find its shard without one.
    for _ in $(seq 100); do
      if redis-cli -p "$2" cluster info 2>/dev/null | grep -q 'cluster_state:ok' &&
        redis-cli -p "$2" info replication 2>/dev/null | grep -q 'master_link_status:up'; then
        log "node on port $2 is back, a replica in sync"
        exit 0
      fi
      sleep 0.1
    done
    log "node on port $2 did not rejoin"
    exit 1
    ;;
  *)
    echo "usage: $0 start|stop|kill PORT|revive PORT" >&2
    exit 2
    ;;
esac

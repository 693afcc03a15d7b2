#!/usr/bin/env bash
# Two goftgu instances behind nginx on this machine, as a deployment would run them: one fresh
# PostgreSQL database, the local Redis (a key prefix of their own), an S3-compatible store (moto's
# server, a bucket made here), one JWT_SECRET and VAPID key, and nginx (Debian's package) with its
# own prefix and config under the run directory (nothing of the system's nginx is touched).
#
#   bash deploy/cluster.sh up      start everything, wait until both instances are ready and
#                                  nginx answers; prints the address to use
#   bash deploy/cluster.sh down    stop everything (SIGTERM: the instances drain), drop the
#                                  database and the Redis keys
#   bash deploy/cluster.sh smoke   up, the round trip of deploy/smoke.py through nginx, down
#                                  (down always runs; the exit status is the round trip's)
#   bash deploy/cluster.sh status  what is running
#
# Settings (environment):
#   GOFTGU_BIN            the binary (default: $CARGO_TARGET_DIR or target, /release/goftgu)
#   CLUSTER_DIR           run directory: pids, logs, data dirs, nginx prefix
#                         (default: ${TMPDIR:-/tmp}/goftgu-cluster)
#   CLUSTER_DB            the database created for the cluster (default: goftgu_cluster)
#   CLUSTER_PG            PostgreSQL server (default: postgres://postgres@127.0.0.1:5432)
#   CLUSTER_REDIS_URL     Redis (default: redis://127.0.0.1:6379)
#   CLUSTER_PORT          nginx's port (default: a free one)
#   CLUSTER_S3_PYTHON     Python with moto[server] (default: the venv `bash .ci/s3` makes)
#   CLUSTER_PY            Python with `websockets` for smoke.py (default: `bash .ci/peers`)
#   GOFTGU_DRAIN_SECONDS  passed to the instances (default here: 10)
# Any other GOFTGU_* variable in the environment reaches the instances unchanged.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPLOY=$ROOT/deploy
BIN=${GOFTGU_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/goftgu}
RUN=${CLUSTER_DIR:-${TMPDIR:-/tmp}/goftgu-cluster}
DB=${CLUSTER_DB:-goftgu_cluster}
PG=${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
REDIS=${CLUSTER_REDIS_URL:-redis://127.0.0.1:6379}
BUCKET=goftgu-files
INSTANCES=(a b)
export GOFTGU_DRAIN_SECONDS=${GOFTGU_DRAIN_SECONDS:-10}

log() { echo "cluster: $*" >&2; }
die() {
  log "FATAL: $*"
  exit 1
}

[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "CLUSTER_DB must be a plain lower-case name, not '$DB'"

psql_admin() { PGOPTIONS="-c client_min_messages=warning" psql "$PG/postgres" -v ON_ERROR_STOP=1 -Atq "$@"; }

# A free TCP port on 127.0.0.1 (the kernel picks it; released at once for the caller).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The interpreter a .ci helper prints on its last line (it makes the venv the first time).
ci_python() { (cd "$ROOT" && bash ".ci/$1" | tail -n1); }

# Waits until `$2...` succeeds (up to $1 seconds), failing early when the process of pid file
# $PIDFILE (if set) has exited.
wait_until() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [[ -n ${PIDFILE:-} ]] && ! alive "$PIDFILE"; then return 1; fi
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

ready() { [[ $(curl -s -o /dev/null -w '%{http_code}' "$1/readyz") == 200 ]]; }

show_log() {
  log "last lines of $1:"
  tail -n 30 "$1" >&2 || true
}

start_s3() {
  local python=${CLUSTER_S3_PYTHON:-$(ci_python s3)}
  local port
  port=$(free_port)
  log "S3 (moto) on 127.0.0.1:$port"
  nohup "$python" -m moto.server -H 127.0.0.1 -p "$port" >"$RUN/s3.log" 2>&1 &
  echo $! >"$RUN/s3.pid"
  echo "http://127.0.0.1:$port" >"$RUN/s3.endpoint"
  PIDFILE=$RUN/s3.pid wait_until 60 curl -sf -o /dev/null "http://127.0.0.1:$port/" ||
    { show_log "$RUN/s3.log"; die "moto's S3 server did not answer on port $port"; }
  curl -sf -o /dev/null -X PUT "http://127.0.0.1:$port/$BUCKET" || die "could not create bucket $BUCKET"
}

start_instance() { # name port
  local name=$1 port=$2
  mkdir -p "$RUN/$name"
  log "instance $name on 127.0.0.1:$port"
  (
    # The same settings for every instance but the port and the data directory.
    set -a
    # shellcheck disable=SC1091
    . "$RUN/cluster.env"
    set +a
    export PORT=$port GOFTGU_DATA_DIR=$RUN/$name
    exec nohup "$BIN" >"$RUN/$name.log" 2>&1
  ) &
  echo $! >"$RUN/$name.pid"
  echo "$port" >"$RUN/$name.port"
}

render_nginx() { # listen port, instance ports...
  local listen=$1
  shift
  local upstreams="" port
  for port in "$@"; do
    upstreams+="        server 127.0.0.1:$port max_fails=1 fail_timeout=5s;"$'\n'
  done
  local upload=${GOFTGU_MAX_UPLOAD_BYTES:-10485760} music=${GOFTGU_MAX_MUSIC_BYTES:-52428800}
  local biggest=$((upload > music ? upload : music))
  # One MiB over the largest file for the multipart envelope and its text parts.
  local max_body=$((biggest + 1048576))
  mkdir -p "$RUN/nginx"
  # Workers may run as another user (nginx started as root): they need to reach the prefix.
  chmod 755 "$RUN" "$RUN/nginx"
  PREFIX=$RUN/nginx LISTEN=$listen UPSTREAMS=${upstreams%$'\n'} MAX_BODY=$max_body python3 - \
    "$DEPLOY/nginx.conf.template" "$RUN/nginx/nginx.conf" <<'EOF'
import os, sys
text = open(sys.argv[1]).read()
for name in ("PREFIX", "LISTEN", "UPSTREAMS", "MAX_BODY"):
    text = text.replace("@%s@" % name, os.environ[name])
open(sys.argv[2], "w").write(text)
EOF
}

cmd_up() {
  command -v nginx >/dev/null || die "nginx is not installed (Debian: apt-get install -y nginx)"
  [[ -x $BIN ]] || die "no goftgu binary at $BIN (cargo build --release, or set GOFTGU_BIN)"
  for pidfile in "$RUN"/*.pid "$RUN"/nginx/nginx.pid; do
    if alive "$pidfile"; then die "a cluster is already running in $RUN (bash $0 down)"; fi
  done
  rm -rf "$RUN"
  mkdir -p "$RUN"
  local started=$SECONDS

  log "database $DB (fresh)"
  psql_admin -c "drop database if exists \"$DB\" with (force)"
  psql_admin -c "create database \"$DB\""
  echo "$DB" >"$RUN/db"

  redis-cli -u "$REDIS" ping | grep -qx PONG || die "Redis at $REDIS does not answer"
  local prefix="goftgu-cluster:$DB:$$:"
  echo "$prefix" >"$RUN/redis.prefix"

  start_s3

  # nginx's port is chosen first: it is the public address every link names.
  local listen=${CLUSTER_PORT:-$(free_port)}

  # The settings every instance shares: what env.example lists for a real deployment.
  umask 077
  cat >"$RUN/cluster.env" <<EOF
DATABASE_URL=$PG/$DB
REDIS_URL=$REDIS
GOFTGU_REDIS_PREFIX=$prefix
JWT_SECRET=$(openssl rand -hex 32)
GOFTGU_VAPID_PRIVATE_KEY=$(openssl rand 32 | base64 | tr '+/' '-_' | tr -d '=')
GOFTGU_S3_BUCKET=$BUCKET
GOFTGU_S3_ENDPOINT=$(cat "$RUN/s3.endpoint")
GOFTGU_S3_REGION=us-east-1
GOFTGU_S3_ACCESS_KEY_ID=testing
GOFTGU_S3_SECRET_ACCESS_KEY=testing
GOFTGU_S3_PREFIX=cluster/
GOFTGU_TRUSTED_PROXIES=127.0.0.1
GOFTGU_HOST=127.0.0.1
GOFTGU_PUBLIC_URL=http://127.0.0.1:$listen
GOFTGU_DRAIN_SECONDS=$GOFTGU_DRAIN_SECONDS
GOFTGU_LOG_FORMAT=text
EOF
  umask 022

  local ports=() name
  for name in "${INSTANCES[@]}"; do
    local port
    port=$(free_port)
    ports+=("$port")
    start_instance "$name" "$port"
  done
  for name in "${INSTANCES[@]}"; do
    PIDFILE=$RUN/$name.pid wait_until 90 ready "http://127.0.0.1:$(cat "$RUN/$name.port")" ||
      { show_log "$RUN/$name.log"; die "instance $name did not become ready"; }
  done

  render_nginx "$listen" "${ports[@]}"
  nginx -t -q -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -e "$RUN/nginx/error.log" ||
    die "nginx refused the rendered config $RUN/nginx/nginx.conf"
  # nginx daemonizes itself (daemon on) and writes its pid under the prefix.
  nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -e "$RUN/nginx/error.log" ||
    { show_log "$RUN/nginx/error.log"; die "nginx did not start"; }
  echo "http://127.0.0.1:$listen" >"$RUN/url"
  wait_until 30 ready "http://127.0.0.1:$listen" ||
    { show_log "$RUN/nginx/error.log"; die "nginx does not answer /readyz on port $listen"; }
  wait_until 10 curl -sf -o /dev/null "http://127.0.0.1:$listen/healthz" ||
    die "nginx does not answer /healthz on port $listen"
  log "up in $((SECONDS - started)) s: http://127.0.0.1:$listen (instances on ${ports[*]}; run dir $RUN)"
  echo "http://127.0.0.1:$listen"
}

# Stops the process of a pid file: SIGTERM, then up to $2 seconds, then SIGKILL.
stop_pid() { # pidfile seconds label
  local pidfile=$1 seconds=$2 label=$3
  alive "$pidfile" || return 0
  local pid
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + seconds))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$label did not stop within $seconds s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$pidfile"
}

cmd_down() {
  [[ -d $RUN ]] || {
    log "nothing in $RUN"
    return 0
  }
  local started=$SECONDS
  # nginx first (no new requests), then the instances drain in parallel.
  stop_pid "$RUN/nginx/nginx.pid" 10 nginx
  local name
  for name in "${INSTANCES[@]}"; do
    stop_pid "$RUN/$name.pid" $((GOFTGU_DRAIN_SECONDS + 5)) "instance $name" &
  done
  wait
  stop_pid "$RUN/s3.pid" 5 "moto"
  if [[ -f $RUN/db ]]; then
    psql_admin -c "drop database if exists \"$(cat "$RUN/db")\" with (force)" || true
    rm -f "$RUN/db"
  fi
  if [[ -f $RUN/redis.prefix ]]; then
    redis-cli -u "$REDIS" --scan --pattern "$(cat "$RUN/redis.prefix")*" |
      xargs -r redis-cli -u "$REDIS" del >/dev/null || true
    rm -f "$RUN/redis.prefix"
  fi
  rm -rf "${INSTANCES[@]/#/$RUN/}" "$RUN/cluster.env"
  log "down in $((SECONDS - started)) s (logs kept in $RUN)"
}

cmd_status() {
  local pidfile
  for pidfile in "$RUN"/*.pid "$RUN"/nginx/nginx.pid; do
    [[ -f $pidfile ]] || continue
    if alive "$pidfile"; then echo "running: $pidfile ($(cat "$pidfile"))"; else echo "gone: $pidfile"; fi
  done
  [[ -f $RUN/url ]] && echo "url: $(cat "$RUN/url")"
  return 0
}

cmd_smoke() {
  local python=${CLUSTER_PY:-$(ci_python peers)}
  local started=$SECONDS status=0
  trap 'cmd_down' EXIT
  local url
  url=$(cmd_up)
  "$python" "$DEPLOY/smoke.py" "$url" || status=$?
  if ((status != 0)); then
    for name in "${INSTANCES[@]}"; do show_log "$RUN/$name.log"; done
    show_log "$RUN/nginx/error.log"
  fi
  trap - EXIT
  cmd_down
  if ((status != 0)); then die "the round trip through nginx failed (exit $status)"; fi
  log "smoke passed in $((SECONDS - started)) s"
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
smoke) cmd_smoke ;;
status) cmd_status ;;
*)
  echo "usage: bash $0 up|down|smoke|status" >&2
  exit 2
  ;;
esac

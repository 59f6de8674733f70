#!/usr/bin/env bash
# OpenStack Swift with its s3api middleware on loopback, as a real S3 for tests
# (shared/local-s3.md appendix A, parameterised). Nothing outside $SWIFT_DIR is written.
#
#   SWIFT_DIR=/tmp/x PROXY_PORT=18080 OBJECT_PORT=16210 CONTAINER_PORT=16211 \
#   ACCOUNT_PORT=16212 MEMCACHED_PORT=11299 scripts/swift/swift-s3.sh
#
# S3: endpoint http://127.0.0.1:$PROXY_PORT (path style), region us-east-1,
# accessKeyId "test:tester", secretAccessKey "testing".
#
# Runs in the foreground: prints "swift s3api ready on <url>" once the proxy answers its
# healthcheck, then stays until SIGTERM/SIGINT or until its stdin closes (so it goes away
# with the process that started it), and stops the servers it started (by their pids).
# The ring files carry the storage ports, so one SWIFT_DIR belongs to one set of ports:
# use a fresh SWIFT_DIR for other ports.
#
# Needs: apt-get install -y swift-proxy swift-object swift-container swift-account memcached
set -euo pipefail

S=${SWIFT_DIR:?set SWIFT_DIR to a scratch folder}
PROXY_PORT=${PROXY_PORT:-8089}
OBJECT_PORT=${OBJECT_PORT:-6210}
CONTAINER_PORT=${CONTAINER_PORT:-6211}
ACCOUNT_PORT=${ACCOUNT_PORT:-6212}
MEMCACHED_PORT=${MEMCACHED_PORT:-11299}
PY=${SWIFT_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
USER_NAME=$(id -un)

missing=""
for cmd in memcached; do
  command -v "$cmd" >/dev/null || missing="$missing $cmd"
done
"$PY" -c 'import swift.common.middleware.s3api' 2>/dev/null || missing="$missing swift(python)"
if [ -n "$missing" ]; then
  echo "swift-s3: missing:$missing. Install with: apt-get install -y swift-proxy swift-object swift-container swift-account memcached" >&2
  exit 127
fi

mkdir -p "$S/etc" "$S/srv/d1" "$S/run" "$S/log"
cat > "$S/etc/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = localsuffix
swift_hash_path_prefix = localprefix
[storage-policy:0]
name = Policy-0
default = yes
CONF

"$PY" "$HERE/make-rings.py" "$S/etc" "object:$OBJECT_PORT" "container:$CONTAINER_PORT" "account:$ACCOUNT_PORT"

for t in "object:$OBJECT_PORT" "container:$CONTAINER_PORT" "account:$ACCOUNT_PORT"; do
  n=${t%%:*}
  p=${t##*:}
  cat > "$S/etc/$n-server.conf" <<CONF
[DEFAULT]
user = $USER_NAME
devices = $S/srv
mount_check = false
disable_fallocate = true
swift_dir = $S/etc
bind_ip = 127.0.0.1
bind_port = $p
workers = 1
log_level = WARNING
[pipeline:main]
pipeline = $n-server
[app:$n-server]
use = egg:swift#$n
CONF
done

cat > "$S/etc/proxy-server.conf" <<CONF
[DEFAULT]
user = $USER_NAME
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
workers = 1
swift_dir = $S/etc
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
max_upload_part_num = 10000
[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000
max_manifest_size = 8388608
[filter:dlo]
use = egg:swift#dlo
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
CONF

pids=()
waiter=""
watchdog=""
stop() {
  trap - TERM INT EXIT
  [ -n "$waiter" ] && kill -TERM "$waiter" 2>/dev/null
  [ -n "$watchdog" ] && kill -TERM "$watchdog" 2>/dev/null
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # Each Swift server forks one worker; SIGTERM to the parent stops both. Give them a
  # moment, then make sure.
  for _ in $(seq 1 50); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$S"/run/*.pid
}
trap stop TERM INT EXIT

memcached_user=()
[ "$(id -u)" = 0 ] && memcached_user=(-u root)
memcached -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 "${memcached_user[@]}" \
  >"$S/log/memcached.log" 2>&1 </dev/null &
pids+=($!)
echo $! >"$S/run/memcached.pid"
for k in object container account proxy; do
  "$PY" "$HERE/run-server.py" "$S/etc" "$S/etc/$k-server.conf" "$k-server" \
    >"$S/log/$k.log" 2>&1 </dev/null &
  pids+=($!)
  echo $! >"$S/run/$k.pid"
done

# If this script is killed outright (SIGKILL: no trap runs), a watchdog still stops the
# servers instead of leaving them to init.
(
  trap - TERM INT EXIT
  while kill -0 $$ 2>/dev/null; do sleep 1; done
  kill -TERM "${pids[@]}" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
watchdog=$!

deadline=$((SECONDS + ${SWIFT_READY_TIMEOUT:-30}))
# The proxy's healthcheck, over bash's /dev/tcp (no curl needed on a minimal machine).
healthy() {
  local status=""
  { exec 4<>"/dev/tcp/127.0.0.1/$PROXY_PORT"; } 2>/dev/null || return 1
  printf 'GET /healthcheck HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&4
  read -r -t 2 _ status _ <&4 || true
  exec 4<&-
  [ "$status" = 200 ]
}
# A TCP connect to a port (the storage servers and memcached answer the proxy only once
# they listen; the healthcheck alone does not wait for them).
listening() {
  { exec 5<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  exec 5<&-
}
ready() {
  healthy && listening "$OBJECT_PORT" && listening "$CONTAINER_PORT" &&
    listening "$ACCOUNT_PORT" && listening "$MEMCACHED_PORT"
}
until ready; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "swift-s3: a server exited at start; logs:" >&2
      tail -n 20 "$S"/log/*.log >&2
      exit 1
    fi
  done
  if [ $SECONDS -ge $deadline ]; then
    echo "swift-s3: not ready within ${SWIFT_READY_TIMEOUT:-30} s; logs in $S/log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "swift s3api ready on http://127.0.0.1:$PROXY_PORT"

# Stay until stdin closes (the parent went away) or a signal arrives. `wait` (unlike a
# blocking `read`) returns at once when a trapped signal arrives.
exec 3<&0
cat <&3 >/dev/null &
waiter=$!
wait "$waiter" || true

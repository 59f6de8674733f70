#!/usr/bin/env bash
# The README's two commands on a new machine, proved: builds a new Debian 12 (bookworm) root
# with debootstrap, installs in it only git, python3 and Debian's own nodejs and npm (Node 18
# and npm 9 on bookworm), clones the committed HEAD of this repository into it and runs, as
# root inside it:
#
#   npm ci && npm run demo -- --exit
#   npm test
#
# Everything else (Node 24, redis-server, chromium, Swift...) must come from the project's
# own files. Prints PASS or FAIL; exits 0 on PASS, 1 on FAIL, 3 when it cannot run here.
#
#   sudo scripts/fresh-root-check.sh [--root DIR] [--repo DIR] [--rev REV] [--keep]
#
#   --root DIR  where the root is built (default /tmp/jcds-fresh-root; it is rebuilt anew)
#   --repo DIR  the git repository to clone (default: the one holding this script)
#   --rev REV   what to check out (default HEAD: what is committed, not the work tree)
#   --keep      keep the root after a PASS (it is always kept after a FAIL, for a look)
#
# Needs root (debootstrap, chroot, mounts), a Debian or Ubuntu host (debootstrap is
# installed with apt-get when missing), network access to Debian's mirror and the npm
# registry, ~4 GB of disk and about 20 minutes (the whole test suite runs inside).
# Debian's packages come from the mirror this machine's apt uses; their .deb files are
# cached between runs in /var/cache/jcds-fresh-root. The host's network settings are carried in, as a new machine
# has them too: /etc/resolv.conf, proxy variables, extra CA certificates
# (/usr/local/share/ca-certificates, the *_CA_* / *CERT* variables) and the registry,
# proxy and CA lines of ~/.npmrc. /proc, /sys and /dev are mounted in the root while it
# runs and unmounted on exit, failure or Ctrl-C; processes left inside it are stopped.
# A policy-rc.d in the root keeps apt-get from starting the services it installs
# (redis-server, memcached), as in any chroot; the demo and the tests start their own.
# Logs: <root>.log (everything) beside the root.
set -euo pipefail

ROOT=/tmp/jcds-fresh-root
REPO=$(cd "$(dirname "$0")/.." && pwd)
REV=HEAD
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=$2 && shift 2 ;;
    --repo) REPO=$2 && shift 2 ;;
    --rev) REV=$2 && shift 2 ;;
    --keep) KEEP=1 && shift ;;
    -h | --help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
    *) echo "fresh-root-check: unknown argument $1 (see --help)" >&2 && exit 2 ;;
  esac
done
ROOT=$(realpath -m "$ROOT")
case "$ROOT" in / | /tmp | /root | /home | /usr | /var | /work) echo "fresh-root-check: refusing --root $ROOT" >&2 && exit 2 ;; esac
LOG="$ROOT.log"
SUITE=bookworm
CACHE=/var/cache/jcds-fresh-root
APP=/root/jcds-fleet
T0=$(date +%s)

say() { echo "fresh-root-check: $*" | tee -a "$LOG" >&2; }
elapsed() { echo "$(($(date +%s) - $1)) s"; }

if [ "$(id -u)" != 0 ]; then
  echo "fresh-root-check: needs root (debootstrap, chroot, mounts); run: sudo $0 $*" >&2
  exit 3
fi
if ! command -v apt-get >/dev/null; then
  echo "fresh-root-check: needs a Debian or Ubuntu host (debootstrap from apt-get)" >&2
  exit 3
fi
git -C "$REPO" rev-parse --verify -q "$REV^{commit}" >/dev/null || {
  echo "fresh-root-check: $REPO has no commit $REV" >&2
  exit 2
}

# --- mounts and cleanup ------------------------------------------------------------------
mounted() { awk -v r="$ROOT" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts; }
stop_inside() { # processes whose root is the new root: started by this check
  local d pids=()
  for d in /proc/[0-9]*; do
    [ "$(readlink "$d/root" 2>/dev/null)" = "$ROOT" ] && pids+=("${d#/proc/}")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  sleep 2
  kill -KILL "${pids[@]}" 2>/dev/null || true
}
unmount_all() {
  local m
  stop_inside
  # Deepest first; a lazy unmount when something still holds one.
  for m in $(mounted | sort -r); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  unmount_all
  if [ -n "$(mounted)" ]; then
    say "WARNING: still mounted under $ROOT: $(mounted | tr '\n' ' ')"
  elif [ "${RESULT:-}" = PASS ] && [ "$KEEP" = 0 ]; then
    rm -rf --one-file-system "$ROOT"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A leftover root from an earlier run: unmount what it left, then start anew.
unmount_all
if [ -n "$(mounted)" ]; then
  echo "fresh-root-check: could not unmount $(mounted | tr '\n' ' '); not touching $ROOT" >&2
  exit 3
fi
rm -rf --one-file-system "$ROOT"
: >"$LOG"

# --- debootstrap -------------------------------------------------------------------------
if ! command -v debootstrap >/dev/null || [ ! -e /usr/share/keyrings/debian-archive-keyring.gpg ]; then
  say "installing debootstrap and debian-archive-keyring with apt-get"
  { apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends debootstrap debian-archive-keyring; } >>"$LOG" 2>&1
fi

# The mirror this machine's apt uses for Debian, when the host is Debian 12 itself.
# shellcheck disable=SC1091
. /etc/os-release
MIRROR=${MIRROR:-}
HOST_SOURCES=()
if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = "$SUITE" ]; then
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -s "$f" ] && grep -q "$SUITE" "$f" && HOST_SOURCES+=("$f")
  done
  if [ -z "$MIRROR" ]; then
    MIRROR=$(cat "${HOST_SOURCES[@]}" /dev/null 2>/dev/null |
      grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')
  fi
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}

mkdir -p "$CACHE"
say "debootstrap $SUITE (minbase) from $MIRROR into $ROOT"
t=$(date +%s)
if ! debootstrap --variant=minbase --cache-dir="$CACHE" "$SUITE" "$ROOT" "$MIRROR" >>"$LOG" 2>&1; then
  tail -n 20 "$LOG" >&2
  say "FAIL: debootstrap failed (log: $LOG)"
  exit 1
fi
say "debootstrap done in $(elapsed "$t")"

# Debian's own sources, as this machine has them (third-party ones are left out).
if [ ${#HOST_SOURCES[@]} -gt 0 ]; then
  rm -f "$ROOT/etc/apt/sources.list"
  for f in "${HOST_SOURCES[@]}"; do cp "$f" "$ROOT$f"; done
else
  cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://security.debian.org/debian-security $SUITE-security main
EOF
fi
printf '#!/bin/sh\n# fresh-root-check: no services start in this chroot\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# The host's network settings (see the header).
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
[ -s "$ROOT/etc/hosts" ] || cp /etc/hosts "$ROOT/etc/hosts"
if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
  cp -r /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
fi
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$ROOT/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
fi
NPMRC=${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)/.npmrc}
NPMRC=${NPMRC:-$HOME/.npmrc}
if [ -f "$NPMRC" ]; then
  grep -E '^[[:space:]]*(registry|@[^:]+:registry|cafile|ca|proxy|https-proxy|noproxy|strict-ssl)[[:space:]]*=' \
    "$NPMRC" >"$ROOT/root/.npmrc" || true
fi
ENV_IN=(HOME=/root LANG=C.UTF-8 TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
while IFS='=' read -r name _; do
  case "$name" in
    http_proxy | https_proxy | no_proxy | HTTP_PROXY | HTTPS_PROXY | NO_PROXY | \
      NODE_EXTRA_CA_CERTS | SSL_CERT_FILE | SSL_CERT_DIR | CURL_CA_BUNDLE | REQUESTS_CA_BUNDLE | AWS_CA_BUNDLE)
      ENV_IN+=("$name=${!name}")
      ;;
  esac
done < <(env)

# --- mounts ------------------------------------------------------------------------------
mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount --rbind /dev "$ROOT/dev"
mount --make-rslave "$ROOT/dev"
# apt's download cache, kept between runs (only the .deb files: nothing is installed from it
# that apt-get would not download otherwise).
mkdir -p "$CACHE/archives/partial"
mount --bind "$CACHE/archives" "$ROOT/var/cache/apt/archives"

inside() { # $1 = minutes, $2 = command: run in the root as root, with a clean environment
  timeout --kill-after=30 "$(($1 * 60))" chroot "$ROOT" /usr/bin/env -i "${ENV_IN[@]}" bash -c "$2"
}
step() { # $1 = name, $2 = minutes at most, $3 = command; output to the terminal and the log
  local t rc
  t=$(date +%s)
  say "--- $1"
  set +e
  inside "$2" "$3" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  [ "$rc" != 124 ] || say "$1 did not finish within $2 min"
  set -e
  say "--- $1: exit $rc after $(elapsed "$t")"
  return "$rc"
}

# --- the machine: git, python3, Debian's nodejs and npm ----------------------------------
# shellcheck disable=SC2016 # expanded inside the root
step "apt-get install git python3 nodejs npm" 20 \
  '{ apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q git python3 nodejs npm; } >/root/apt-base.log 2>&1 ||
     { tail -n 20 /root/apt-base.log; exit 1; }
   echo "node $(node --version), npm $(npm --version), $(git --version), $(python3 --version)"' || {
  RESULT=FAIL
  say "FAIL: could not install the base packages (log: $LOG)"
  exit 1
}

# What is committed, not the work tree.
commit=$(git -C "$REPO" rev-parse "$REV^{commit}")
git clone -q --no-hardlinks "$REPO" "$ROOT$APP"
git -C "$ROOT$APP" -c advice.detachedHead=false checkout -q "$commit"
say "cloned $REPO at $(git -C "$REPO" log -1 --format='%h %s' "$commit" | cut -c1-100)"

# --- the README's two commands -----------------------------------------------------------
fail() {
  RESULT=FAIL
  say "FAIL: $1 (log: $LOG; the root is kept: $ROOT)"
  exit 1
}
step "npm ci" 20 "cd $APP && npm ci" || fail "npm ci"
# shellcheck disable=SC2016 # expanded inside the root
step "node --version, as npm scripts see it (Node 24 from npm ci)" 2 \
  "cd $APP && "'v=$(npm exec -c "node --version") && echo "$v" && case "$v" in v24.*) ;; *) exit 1 ;; esac' ||
  fail "npm scripts do not run on the Node 24 that npm ci installed"
step "npm run demo -- --exit" 20 "cd $APP && npm run demo -- --exit" || fail "npm run demo -- --exit"
step "npm test" 60 "cd $APP && npm test" || fail "npm test"

RESULT=PASS
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOG" | tail -n1)
say "PASS: npm ci, npm run demo -- --exit and npm test (${summary:-no summary line}) in a new $SUITE root, in $(elapsed "$T0")"

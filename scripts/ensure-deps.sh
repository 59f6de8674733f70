#!/usr/bin/env bash
# The one place that installs what the demo, the tests and the bench need from the system:
# `npm run demo`, `npm test` (scripts/test.sh), `npm run bench` and .ci/run call it first.
#
#   scripts/ensure-deps.sh [--check] ITEM...
#
#   demo      redis-server (nothing when REDIS_URL is set: the demo then uses that Redis)
#   test      redis-server, chromium, OpenStack Swift with s3api, memcached
#   bench     aws-cli (/usr/bin/aws), boto3 and requests (/usr/bin/python3), curl, redis-server
#   node      a Node >= 22.19 first on PATH (npm scripts put the one `npm ci` installed
#             from package.json's optionalDependencies first); checked, never installed
#   or single tools: redis chromium swift memcached aws boto3 requests curl
#
# What is there is found in well under a second and nothing else runs (no apt-get update).
# What is missing is installed, and named first: with apt-get on Debian/Ubuntu (as root,
# or with sudo: `apt-get update` first), with Homebrew on macOS. Where it cannot (no root
# and no usable sudo, no Homebrew, another OS, or --check / JCDS_NO_INSTALL=1), it prints
# the exact command and exits 3. apt-get's own output goes to a log, shown on failure.
#
# Exit codes: 0 everything is there, 2 usage, 3 something is missing and was not installed.
set -uo pipefail

me=ensure-deps
say() { echo "$me: $*" >&2; }
usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

install=1
[ "${JCDS_NO_INSTALL:-}" = 1 ] && install=0
items=()
asked=()
for a in "$@"; do
  [ "${a#-}" != "$a" ] || asked+=("$a")
  case "$a" in
    --check) install=0 ;;
    -h | --help) usage 0 ;;
    demo) [ -n "${REDIS_URL:-}" ] || items+=(redis) ;;
    test) items+=(redis chromium swift memcached) ;;
    bench) items+=(aws boto3 requests curl redis) ;;
    node | redis | chromium | swift | memcached | aws | boto3 | requests | curl) items+=("$a") ;;
    *)
      say "unknown item '$a'"
      usage
      ;;
  esac
done
[ ${#items[@]} -gt 0 ] || exit 0

os=$(uname -s)

# --- Node: checked first, since everything after it runs on it --------------------------
node_ok() {
  node -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 23 || (a === 23 && b >= 6) || (a === 22 && b >= 19) ? 0 : 1);' 2>/dev/null
}
for i in "${items[@]}"; do
  [ "$i" = node ] || continue
  if ! node_ok; then
    v=$(node --version 2>/dev/null || echo none)
    case "$os $(uname -m)" in
      "Linux x86_64" | "Linux aarch64" | "Darwin x86_64")
        how="run \`npm ci\` (it installs Node 24 for the npm scripts, in node_modules/.bin), then use the npm scripts (\`npm run ...\`, \`npm test\`)"
        ;;
      Darwin*) how="\`npm ci\` brings no Node for Apple silicon: \`brew install node\` (or Node 24 from nodejs.org)" ;;
      *) how="\`npm ci\` brings no Node for $os $(uname -m): install Node 24 (nodejs.org, or your distribution)" ;;
    esac
    say "jcds-fleet needs Node >= 22.19 and the node on PATH is $v: $how"
    exit 3
  fi
done

# --- system tools ------------------------------------------------------------------------
# Debian packages installed (fast); the Python checks below start an interpreter.
dpkg_has() {
  command -v dpkg-query >/dev/null || return 1
  [ "$(dpkg-query -W -f='${Status}\n' "$@" 2>/dev/null | grep -c 'install ok installed')" = $# ]
}
# On PATH and executable (bash's `command -v` also returns a match it cannot run).
cmd_ok() {
  local p
  p=$(command -v "$1") && [ -x "$p" ]
}
have() {
  case "$1" in
    node) return 0 ;;
    redis) cmd_ok redis-server ;;
    chromium)
      if [ "$os" = Darwin ]; then
        [ -d /Applications/Chromium.app ] || cmd_ok chromium
      else
        [ -x /usr/bin/chromium ]
      fi
      ;;
    # What test/helpers/swift.ts checks.
    swift)
      cmd_ok swift-ring-builder && {
        dpkg_has swift-proxy swift-object swift-container swift-account ||
          /usr/bin/python3 -c 'import swift.common.middleware.s3api' 2>/dev/null
      }
      ;;
    memcached) cmd_ok memcached ;;
    # The bench runs these by absolute path (see scripts/install-bench-tools.sh).
    aws) [ -x /usr/bin/aws ] ;;
    boto3) dpkg_has python3-boto3 || /usr/bin/python3 -c 'import boto3' 2>/dev/null ;;
    requests) dpkg_has python3-requests || /usr/bin/python3 -c 'import requests' 2>/dev/null ;;
    curl) cmd_ok curl ;;
  esac
}
apt_pkgs() {
  case "$1" in
    redis) echo redis-server ;;
    chromium) echo chromium ;;
    swift) echo swift-proxy swift-object swift-container swift-account ;;
    memcached) echo memcached ;;
    aws) echo awscli ;;
    boto3) echo python3-boto3 ;;
    requests) echo python3-requests ;;
    curl) echo curl ;;
  esac
}
# Homebrew names; empty: nothing that what needs it would find (said so, and left to the
# test that needs it): Homebrew has no OpenStack Swift, the browser test runs
# /usr/bin/chromium and the bench /usr/bin/aws with Debian's /usr/bin/python3 and boto3.
brew_pkgs() {
  case "$1" in
    redis) echo redis ;;
    memcached) echo memcached ;;
    curl) echo curl ;;
  esac
}

missing=()
seen=" "
for i in "${items[@]}"; do
  case "$seen" in *" $i "*) continue ;; esac
  seen="$seen$i "
  have "$i" || missing+=("$i")
done
[ ${#missing[@]} -gt 0 ] || exit 0

why="for: ${asked[*]}"
cannot() { # $1 = reason, $2 = the exact command
  say "missing: ${missing[*]} ($why)"
  say "$1; run:"
  echo "    $2" >&2
  exit 3
}

if [ "$os" = Linux ] && command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
  pkgs=""
  for i in "${missing[@]}"; do pkgs="$pkgs $(apt_pkgs "$i")"; done
  pkgs=${pkgs# }
  cmd="sudo apt-get update && sudo apt-get install -y --no-install-recommends $pkgs"
  [ "$(id -u)" = 0 ] && cmd="apt-get update && apt-get install -y --no-install-recommends $pkgs"
  [ "$install" = 1 ] || cannot "not installing (--check or JCDS_NO_INSTALL=1)" "$cmd"
  if [ "$(id -u)" = 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    SUDO=(sudo)
  else
    cannot "not root, and sudo is missing or needs a password with no terminal to ask on" "$cmd"
  fi
  log=$(mktemp "${TMPDIR:-/tmp}/jcds-ensure-deps.XXXXXX.log")
  say "installing $pkgs with apt-get ($why; log: $log)"
  apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
  # shellcheck disable=SC2086 # $pkgs is a list of package names
  if ! { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends $pkgs; } >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    cannot "apt-get failed (above; whole log: $log)" "$cmd"
  fi
elif [ "$os" = Darwin ]; then
  formulas=""
  casks=""
  for i in "${missing[@]}"; do
    p=$(brew_pkgs "$i")
    case "$p" in
      "") say "no Homebrew formula for '$i' ($why): what needs it runs on Debian/Ubuntu" ;;
      --cask*) casks="$casks ${p#--cask }" ;;
      *) formulas="$formulas $p" ;;
    esac
  done
  cmd=""
  [ -z "$formulas" ] || cmd="brew install$formulas"
  [ -z "$casks" ] || cmd="${cmd:+$cmd && }brew install --cask$casks"
  [ -n "$cmd" ] || exit 0
  command -v brew >/dev/null || cannot "Homebrew is not installed (https://brew.sh)" "$cmd"
  [ "$install" = 1 ] || cannot "not installing (--check or JCDS_NO_INSTALL=1)" "$cmd"
  say "installing with Homebrew ($why): $cmd"
  if [ -n "$formulas" ]; then
    # shellcheck disable=SC2086
    brew install $formulas >&2 || cannot "brew failed" "$cmd"
  fi
  if [ -n "$casks" ]; then
    # shellcheck disable=SC2086
    brew install --cask $casks >&2 || cannot "brew failed" "$cmd"
  fi
  # What Homebrew cannot provide was said above; check only what it installed.
  still=()
  for i in "${missing[@]}"; do [ -z "$(brew_pkgs "$i")" ] || have "$i" || still+=("$i"); done
  [ ${#still[@]} -eq 0 ] || { missing=("${still[@]}") && cannot "still missing after brew" "$cmd"; }
  say "installed: $cmd"
  exit 0
else
  pkgs=""
  for i in "${missing[@]}"; do pkgs="$pkgs $(apt_pkgs "$i")"; done
  cannot "no apt-get (Debian/Ubuntu) or Homebrew (macOS) here: install the equivalents of these Debian packages with your package manager" "apt-get install -y${pkgs}"
fi

still=()
for i in "${missing[@]}"; do have "$i" || still+=("$i"); done
if [ ${#still[@]} -gt 0 ]; then
  missing=("${still[@]}")
  cannot "still missing after apt-get (log: $log)" "$cmd"
fi
say "installed: $pkgs"

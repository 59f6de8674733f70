#!/usr/bin/env bash
# Installs the third-party clients that `npm run bench` compares the fleet with, from
# Debian's packages (idempotent: packages already installed are skipped, and nothing runs
# apt-get when everything is there). Run as root, or with sudo available.
#
#   awscli         /usr/bin/aws (aws-cli v2): `aws s3 cp` up and down
#   python3-boto3  boto3 for /usr/bin/python3: the jamf-pro-sdk-python upload/download pattern
#   curl           single-stream presigned PUT/GET (the S3 ceiling, the download baseline)
#   redis-server   the fleet's queue (the bench spawns its own on a free port)
#   coreutils      dd (disk read speed)
#
# Note: on machines with pyenv, `aws` and `python3` on PATH may be pyenv shims of other
# versions; the bench always uses /usr/bin/aws and /usr/bin/python3 (see shared/local-s3.md).
# The Swift s3api column needs the Swift launcher's own packages (scripts/swift/).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

PKGS="awscli python3-boto3 curl redis-server coreutils"
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install-bench-tools: installing$missing" >&2
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 $missing
else
  echo "install-bench-tools: all present ($PKGS)" >&2
fi

# Check that what the bench runs is really there.
/usr/bin/aws --version >&2
/usr/bin/python3 -c 'import boto3, sys; sys.stderr.write("boto3 %s\n" % boto3.__version__)'
curl --version | head -n1 >&2
redis-server --version >&2

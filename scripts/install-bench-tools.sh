#!/usr/bin/env bash
# Installs the third-party clients that `npm run bench` compares the fleet with, through
# scripts/ensure-deps.sh (`npm run bench` runs the same step itself), then shows their
# versions. Debian's packages:
#
#   awscli         /usr/bin/aws (aws-cli v2): `aws s3 cp` up and down
#   python3-boto3  boto3 for /usr/bin/python3: the jamf-pro-sdk-python upload/download pattern
#   curl           single-stream presigned PUT/GET (the S3 ceiling, the download baseline)
#   redis-server   the fleet's queue (the bench spawns its own on a free port)
#   coreutils      dd (disk read speed; every Debian has it)
#
# Note: on machines with pyenv, `aws` and `python3` on PATH may be pyenv shims of other
# versions; the bench always uses /usr/bin/aws and /usr/bin/python3 (see shared/local-s3.md).
# The Swift s3api column needs the Swift launcher's own packages (scripts/swift/):
# `scripts/ensure-deps.sh swift memcached`; without them that column is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh bench

# Check that what the bench runs is really there.
/usr/bin/aws --version >&2
/usr/bin/python3 -c 'import boto3, sys; sys.stderr.write("boto3 %s\n" % boto3.__version__)'
curl --version | head -n1 >&2
redis-server --version >&2

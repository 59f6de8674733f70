#!/usr/bin/env bash
# Installs the third-party clients that `npm run bench` compares the fleet with, through
# scripts/ensure-deps.sh (`npm run bench` runs the same step itself), then shows their
# versions. Debian's packages:
#
#   awscli         /usr/bin/aws (aws-cli v2): `aws s3 cp` up and down
#   python3-boto3  boto3 for /usr/bin/python3: the jamf-pro-sdk-python upload pattern (the peer)
#   python3-requests  requests for it: the peer's Jamf API calls and ranged downloads
#   curl           single-stream presigned PUT/GET (the S3 ceiling, the download baseline)
#   redis-server   the fleet's queue (the bench spawns its own on a free port)
#   coreutils      dd (disk read speed; every Debian has it)
#
# Note: the bench takes `aws`, `python3` and `curl` from PATH, passing over pyenv shims
# (which may stand for versions without boto3); a missing one only skips its rows
# (test/bench/lib/tools.ts).
# The Swift s3api column needs the Swift launcher's own packages (scripts/swift/):
# `scripts/ensure-deps.sh swift memcached`; without them that column is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh bench

# Check that what the bench runs is really there.
/usr/bin/aws --version >&2
/usr/bin/python3 -c 'import boto3, requests, sys; sys.stderr.write("boto3 %s, requests %s\n" % (boto3.__version__, requests.__version__))'
curl --version | head -n1 >&2
redis-server --version >&2

#!/usr/bin/python3
"""Downloads a presigned URL the way jamf-pro-sdk-python's JCDS2.download_file does
(shared/jamf-api.md 1.2): HEAD for Content-Length (a one-byte ranged GET where the URL
refuses HEAD), then GET with Range of 20 MiB each,
5 at a time (requests.Session with an HTTPAdapter of 5 connections).

Unlike the SDK, each range is streamed straight to its offset in the destination file
(os.pwrite) instead of into a temporary chunk file that is concatenated afterwards: the
stronger of the two for a baseline. Prints one JSON line: {"ranges": N, "seconds": t}.
"""
import argparse
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter

p = argparse.ArgumentParser()
p.add_argument("--url", required=True)
p.add_argument("--dest", required=True)
p.add_argument("--range-size", type=int, default=20 * 1024 * 1024)
p.add_argument("--threads", type=int, default=5)
a = p.parse_args()

session = requests.Session()
adapter = HTTPAdapter(max_retries=3, pool_connections=a.threads, pool_maxsize=a.threads)
session.mount("http://", adapter)
session.mount("https://", adapter)

t0 = time.monotonic()
head = session.head(a.url, timeout=60)
if head.status_code == 200:
    length = int(head.headers["Content-Length"])
else:
    # A URL presigned for GET only (real S3, Swift) refuses HEAD: ask for one byte instead.
    probe = session.get(a.url, headers={"Range": "bytes=0-0"}, timeout=60)
    probe.raise_for_status()
    length = int(probe.headers["Content-Range"].rsplit("/", 1)[1])
total = math.ceil(length / a.range_size)
fd = os.open(a.dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, length)


def get(i):
    start = i * a.range_size
    end = min(start + a.range_size, length) - 1
    r = session.get(a.url, headers={"Range": f"bytes={start}-{end}"}, timeout=60, stream=True)
    r.raise_for_status()
    off = start
    for chunk in r.iter_content(chunk_size=1024 * 1024):
        os.pwrite(fd, chunk, off)
        off += len(chunk)
    if off != end + 1:
        raise RuntimeError(f"range {i}: got {off - start} bytes, expected {end + 1 - start}")
    return i


with ThreadPoolExecutor(max_workers=a.threads) as pool:
    list(pool.map(get, range(total)))
os.close(fd)
print(json.dumps({"ranges": total, "seconds": time.monotonic() - t0}))

#!/usr/bin/env python3
"""The peer: what jamf-pro-sdk-python's JCDS2 client does (macadmins/jamf-pro-sdk-python,
src/jamf_pro_sdk/clients/jcds2.py), driven as a new user of that SDK would, against the
Jamf Pro at $JAMF_URL with the API client $JAMF_CLIENT_ID / $JAMF_CLIENT_SECRET.

upload FILE:
  1. an OAuth token (client credentials, as the SDK's ApiClientCredentialsProvider);
  2. the SDK's duplicate check: GET /JSSResource/packages, then GET each package by id, and
     refuse when one has the file's name;
  3. POST /api/v1/jcds/files for temporary S3 credentials;
  4. boto3 with them: one put_object below --multipart-threshold (the SDK: 1 GiB), else
     create_multipart_upload, 20 MiB parts (open/seek/read each) through 5 threads (the
     SDK's default max_concurrency), complete_multipart_upload (abort if that fails);
  5. the record: POST /JSSResource/packages/id/0 with <package><name/><filename/></package>
     (the SDK's ClassicPackage);
     prints {"event": "record", "packageId": N} when upload_file() would return;
  6. then, as a user of the SDK must (it has no wait), polls GET /api/v1/packages/{id} every
     --poll seconds until Jamf reports cloudTransferStatus READY with its hash (hashType
     SHA3_512, a hashValue, a sha256) and the file's size; prints {"event": "ready", ...}.

download FILE_NAME DEST:
  the SDK's download_file: GET /api/v1/jcds/files/{name} for the URL, HEAD for the length,
  20 MiB ranges, 5 at a time (requests.Session with an HTTPAdapter of 5 connections).
  --write offsets (default): each range streamed to its offset in DEST (os.pwrite), the
  stronger baseline; --write chunks: as the SDK, each range into a chunk file of a
  temporary folder, then the chunks appended to DEST in order. Nothing is verified (the SDK
  checks no hash).

Secrets come from the environment only. The S3 endpoint (--endpoint) is the simulator's:
the SDK's boto3 client talks to AWS itself. Run with a python3 that has boto3 and requests
(Debian: python3-boto3 python3-requests).
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

CHUNK = 20 * 1024 * 1024
THREADS = 5


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Jamf:
    """The SDK's JamfProClient, reduced to what JCDS2 uses: one requests.Session."""

    def __init__(self):
        self.url = os.environ["JAMF_URL"].rstrip("/")
        self.client_id = os.environ["JAMF_CLIENT_ID"]
        self.client_secret = os.environ["JAMF_CLIENT_SECRET"]
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json"})
        adapter = HTTPAdapter(max_retries=0, pool_connections=THREADS, pool_maxsize=THREADS)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.token = None
        self.expires = 0.0

    def bearer(self):
        # The SDK refreshes a token that expires within a minute... of its 60 s life it would
        # refresh at once; 5 s of margin instead.
        if self.token is None or time.time() > self.expires - 5:
            r = self.session.post(
                f"{self.url}/api/oauth/token",
                data={
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "grant_type": "client_credentials",
                },
                timeout=60,
            )
            r.raise_for_status()
            body = r.json()
            self.token = body["access_token"]
            self.expires = time.time() + float(body.get("expires_in", 60))
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method, path, **kw):
        headers = {**self.bearer(), **kw.pop("headers", {})}
        r = self.session.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kw)
        r.raise_for_status()
        return r


def classic_package_id(resp):
    text = resp.text.strip()
    if text.startswith("{"):
        return int(resp.json()["package"]["id"])
    return int(ET.fromstring(text).findtext("id"))


def upload(a):
    jamf = Jamf()
    path = Path(a.file)
    size = path.stat().st_size
    name = path.name

    # The SDK's duplicate check: every package, one GET each.
    listing = jamf.request("GET", "/JSSResource/packages").json()["packages"]
    for p in listing:
        pkg = jamf.request("GET", f"/JSSResource/packages/id/{p['id']}").json()["package"]
        if pkg.get("filename") == name:
            raise SystemExit(f"The file '{name}' exists and is associated to package ({p['id']})")

    c = jamf.request("POST", "/api/v1/jcds/files").json()

    import boto3
    from botocore.config import Config

    session = boto3.Session(
        aws_access_key_id=c["accessKeyID"],
        aws_secret_access_key=c["secretAccessKey"],
        aws_session_token=c["sessionToken"],
        region_name=c["region"],
    )
    s3 = session.client(
        "s3", endpoint_url=a.endpoint, config=Config(s3={"addressing_style": "path"})
    )
    bucket, key = c["bucketName"], f"{c['path']}{name}"
    if size < a.multipart_threshold:
        with open(path, "rb") as f:
            s3.put_object(Body=f, Bucket=bucket, Key=key)
        parts = 1
    else:
        total = math.ceil(size / CHUNK)
        mpu = s3.create_multipart_upload(Bucket=bucket, Key=key)

        def put(n):
            with open(path, "rb") as f:
                f.seek((n - 1) * CHUNK)
                body = f.read(CHUNK)
            r = s3.upload_part(
                Body=body, Bucket=bucket, Key=key, PartNumber=n, UploadId=mpu["UploadId"]
            )
            return {"PartNumber": n, "ETag": r["ETag"]}

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            done = list(pool.map(put, range(1, total + 1)))
        try:
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=mpu["UploadId"], MultipartUpload={"Parts": done}
            )
        except Exception:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=mpu["UploadId"])
            raise
        parts = total

    xml = f"<package><name>{name}</name><filename>{name}</filename></package>"
    created = jamf.request(
        "POST",
        "/JSSResource/packages/id/0",
        data=xml.encode(),
        headers={"Content-Type": "text/xml"},
    )
    package_id = classic_package_id(created)
    say({"event": "record", "packageId": package_id, "parts": parts, "scanned": len(listing)})

    deadline = time.monotonic() + a.timeout
    polls = 0
    while True:
        polls += 1
        rec = jamf.request("GET", f"/api/v1/packages/{package_id}").json()
        if (
            rec.get("cloudTransferStatus") == "READY"
            and rec.get("hashType") == "SHA3_512"
            and rec.get("hashValue")
            and rec.get("sha256")
            and str(rec.get("size")) == str(size)
        ):
            say({"event": "ready", "packageId": package_id, "polls": polls})
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"package {package_id} not READY within {a.timeout} s: {rec}")
        time.sleep(a.poll)


def download(a):
    jamf = Jamf()
    uri = jamf.request("GET", f"/api/v1/jcds/files/{a.file_name}").json()["uri"]
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=3, pool_connections=THREADS, pool_maxsize=THREADS)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    head = session.head(uri, timeout=60)
    if head.status_code == 200:
        length = int(head.headers["Content-Length"])
    else:
        # A URL signed for GET only refuses HEAD: one byte tells the length instead.
        probe = session.get(uri, headers={"Range": "bytes=0-0"}, timeout=60)
        probe.raise_for_status()
        length = int(probe.headers["Content-Range"].rsplit("/", 1)[1])
    total = math.ceil(length / CHUNK)

    if a.write == "offsets":
        fd = os.open(a.dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(fd, length)

        def get(i):
            start = i * CHUNK
            end = min(start + CHUNK, length) - 1
            r = session.get(uri, headers={"Range": f"bytes={start}-{end}"}, timeout=60, stream=True)
            r.raise_for_status()
            off = start
            for chunk in r.iter_content(chunk_size=1024 * 1024):
                os.pwrite(fd, chunk, off)
                off += len(chunk)
            if off != end + 1:
                raise RuntimeError(f"range {i}: got {off - start} bytes, expected {end + 1 - start}")

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            list(pool.map(get, range(total)))
        os.close(fd)
    else:
        with tempfile.TemporaryDirectory(prefix="jcds2-download-", dir=a.tmp) as tmp:

            def get(i):
                start = i * CHUNK
                end = (i + 1) * CHUNK - 1
                with session.get(uri, headers={"Range": f"bytes={start}-{end}"}, timeout=60) as r:
                    r.raise_for_status()
                    with open(f"{tmp}/chunk_{str(i).zfill(9)}", "wb") as f:
                        f.write(r.content)

            with ThreadPoolExecutor(max_workers=THREADS) as pool:
                list(pool.map(get, range(total)))
            with open(a.dest, "wb") as out:
                for chunk in sorted(Path(tmp).glob("chunk_*")):
                    with open(chunk, "rb") as f:
                        out.write(f.read())
    say({"event": "downloaded", "ranges": total, "bytes": length})


p = argparse.ArgumentParser()
sub = p.add_subparsers(dest="cmd", required=True)
u = sub.add_parser("upload")
u.add_argument("file")
u.add_argument("--endpoint", required=True)
u.add_argument("--multipart-threshold", type=int, default=1024 * 1024 * 1024)
u.add_argument("--poll", type=float, default=0.5)
u.add_argument("--timeout", type=float, default=900)
d = sub.add_parser("download")
d.add_argument("file_name")
d.add_argument("dest")
d.add_argument("--write", choices=["offsets", "chunks"], default="offsets")
d.add_argument("--tmp", default=None)
a = p.parse_args()
upload(a) if a.cmd == "upload" else download(a)

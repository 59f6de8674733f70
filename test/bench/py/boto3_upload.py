#!/usr/bin/python3
"""Uploads a file the way jamf-pro-sdk-python's JCDS2.upload_file does for large files
(src/jamf_pro_sdk/clients/jcds2.py, see shared/jamf-api.md 1.1): boto3 with the JCDS
temporary credentials, CreateMultipartUpload, 20 MiB parts each read into memory with
open/seek/read, UploadPart through a ThreadPoolExecutor of 5 threads, CompleteMultipartUpload
with the parts in order (AbortMultipartUpload if that fails).

Unlike the SDK, it uses multipart for every size (the SDK sends files under 1 GiB with one
put_object) and points the client at --endpoint with path-style addressing.

Run with Debian's /usr/bin/python3 (python3-boto3). Credentials come from the AWS_*
environment. Prints one JSON line: {"parts": N, "seconds": transfer time}.
"""
import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

p = argparse.ArgumentParser()
p.add_argument("--endpoint", required=True)
p.add_argument("--bucket", required=True)
p.add_argument("--key", required=True)
p.add_argument("--file", required=True)
p.add_argument("--part-size", type=int, default=20 * 1024 * 1024)
p.add_argument("--threads", type=int, default=5)
a = p.parse_args()

session = boto3.Session(
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
    region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
)
s3 = session.client(
    "s3",
    endpoint_url=a.endpoint,
    config=Config(s3={"addressing_style": "path"}, max_pool_connections=max(10, a.threads)),
)

size = os.stat(a.file).st_size
total = math.ceil(size / a.part_size)


def get_chunk(n):
    with open(a.file, "rb") as f:
        f.seek(n * a.part_size)
        return f.read(a.part_size)


t0 = time.monotonic()
mpu = s3.create_multipart_upload(Bucket=a.bucket, Key=a.key)
upload_id = mpu["UploadId"]


def put(n):
    r = s3.upload_part(
        Body=get_chunk(n), Bucket=a.bucket, Key=a.key, PartNumber=n + 1, UploadId=upload_id
    )
    return {"PartNumber": n + 1, "ETag": r["ETag"]}


with ThreadPoolExecutor(max_workers=a.threads) as pool:
    parts = list(pool.map(put, range(total)))
try:
    s3.complete_multipart_upload(
        Bucket=a.bucket, Key=a.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
except Exception:
    s3.abort_multipart_upload(Bucket=a.bucket, Key=a.key, UploadId=upload_id)
    raise
print(json.dumps({"parts": total, "seconds": time.monotonic() - t0}))
sys.stdout.flush()

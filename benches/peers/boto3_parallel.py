#!/usr/bin/env python3
"""The common "parallel" organization-wide scan: boto3, a thread pool, default retries.

What people write today: list the accounts, assume a role in each, then one job per
(account, region, event name) on a pool of threads, each reading every page with
boto3's LookupEvents paginator. Nothing paces the calls per (account, region); a
job whose retries run out logs the error and moves on, as such scripts do.

Usage (the benchmark runs it; see benches/peers/README.md):
    AWS_ENDPOINT_URL=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
    python3 boto3_parallel.py --regions us-east-1,eu-west-1 --start 2026-11-13T18:00:00Z \
        --end 2026-11-20T18:00:00Z --out ids.txt [--workers 32] [--role-name SessionAuditRole]

Writes every EventId it read (one per line, duplicates kept) to --out and a one-line
JSON summary to stdout.
"""
import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import boto3
import botocore
from botocore.exceptions import BotoCoreError, ClientError

EVENT_NAMES = ["StartSession", "ResumeSession", "TerminateSession"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--regions", required=True)
    ap.add_argument("--event-names", default=",".join(EVENT_NAMES))
    ap.add_argument("--start", required=True)
    ap.add_argument("--end", required=True)
    ap.add_argument("--role-name", default="SessionAuditRole")
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    regions = [r for r in args.regions.split(",") if r]
    names = [n for n in args.event_names.split(",") if n]

    started = time.monotonic()
    base = boto3.session.Session()
    me = base.client("sts").get_caller_identity()["Account"]
    accounts = []
    for page in base.client("organizations").get_paginator("list_accounts").paginate():
        accounts += [a["Id"] for a in page["Accounts"] if a.get("State", a.get("Status")) == "ACTIVE"]

    sts = base.client("sts")

    def assume(account):
        if account == me:
            return None  # the caller's own credentials
        try:
            return sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{args.role_name}",
                RoleSessionName="session-audit",
            )["Credentials"]
        except (ClientError, BotoCoreError) as e:
            return e

    lock = threading.Lock()
    clients = {}  # (account, region) -> CloudTrail client (clients are thread-safe)
    ids = []
    failures = []

    def client_for(account, region):
        key = (account, region)
        with lock:
            # One session for all clients (its loader caches the service model);
            # building a client is not thread-safe, so it happens under the lock.
            if key not in clients:
                c = creds[account]
                extra = {} if c is None else {
                    "aws_access_key_id": c["AccessKeyId"],
                    "aws_secret_access_key": c["SecretAccessKey"],
                    "aws_session_token": c["SessionToken"],
                }
                clients[key] = base.client("cloudtrail", region_name=region, **extra)
            return clients[key]

    def job(account, region, name):
        got = []
        try:
            pages = client_for(account, region).get_paginator("lookup_events").paginate(
                LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}],
                StartTime=args.start,
                EndTime=args.end,
            )
            for page in pages:
                got += [e["EventId"] for e in page.get("Events", [])]
            err = None
        except (ClientError, BotoCoreError) as e:
            err = f"{account} {region} {name}: {e}"
        with lock:
            ids.extend(got)
            if err:
                failures.append(err)

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        # First every account's role, then one job per account, region and event name.
        creds = {}
        for account, c in zip(accounts, pool.map(assume, accounts)):
            if isinstance(c, Exception):
                failures.append(f"{account}: AssumeRole: {c}")
            else:
                creds[account] = c
        futures = [pool.submit(job, a, r, n) for a in creds for r in regions for n in names]
        for f in as_completed(futures):
            f.result()

    with open(args.out, "w") as out:
        out.write("\n".join(ids))
        out.write("\n" if ids else "")
    print(json.dumps({
        "tool": "boto3-threadpool",
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "retry_mode": base._session.get_config_variable("retry_mode"),
        "workers": args.workers,
        "accounts": len(accounts),
        "jobs": len(accounts) * len(regions) * len(names),
        "events": len(ids),
        "failed_jobs": len(failures),
        "first_failures": failures[:5],
        "seconds": round(time.monotonic() - started, 3),
    }))
    for f in failures[:20]:
        print(f, file=sys.stderr)


if __name__ == "__main__":
    main()

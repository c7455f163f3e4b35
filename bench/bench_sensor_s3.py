"""landing_sensor ticks against a real S3-compatible server (moto in server mode) holding 10,000 objects in 35
day folders, next to the local-disk tick of the same layout measured in the same run (the baseline).

A bucket is listed in bounded calls (source.listing: 1,000 keys a call, a tick budget of 0.5 s); a pass larger than
one tick continues from the cursor, so the figures are: the median and worst tick, and how many ticks (and how much
time) one complete pass over the bucket takes, i.e. how late a new object can be noticed at most.

Usage: python bench/bench_sensor_s3.py [--objects N] [--days D] [--passes P]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
import yaml


def _ticks(project, passes: int) -> tuple[list[float], list[int]]:
    """Tick times, and the ticks each complete pass took (a pass ends with a tick that compared days)."""
    from eval_pipelines.ingestion.landing import decode_listing
    from eval_pipelines.ingestion.sensors import landing_sensor

    timings: list[float] = []
    per_pass: list[int] = []
    with dg.instance_for_test() as instance:
        cursor, ticks = None, 0
        while len(per_pass) < passes:
            context = dg.build_sensor_context(cursor=cursor, instance=instance, resources={"project": project})
            started = time.perf_counter()
            result = landing_sensor(context)
            timings.append(time.perf_counter() - started)
            cursor, ticks = result.cursor, ticks + 1
            if decode_listing(cursor) is None:
                per_pass.append(ticks)
                ticks = 0
    return timings, per_pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()

    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    from eval_pipelines.resources import ProjectConfigResource

    # Throw-away credentials in the standard variables, where the landing code reads them (never the config).
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench-landing")
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        with tempfile.TemporaryDirectory(prefix="bench_sensor_s3_") as tmp:
            landing = Path(tmp) / "landing"
            names = [f"2026-{10 + (i % args.days) // 28:02d}-{1 + (i % args.days) % 28:02d}/part-{i:05d}.jsonl"
                     for i in range(args.objects)]
            for name in names:
                (landing / name).parent.mkdir(parents=True, exist_ok=True)
                (landing / name).write_text("{}\n")
                # Straight into the server's store: 10,000 PUTs over HTTP take minutes and measure nothing here.
                backend.put_object("bench-landing", f"landing/{name}", b"{}\n")
            projects = {}
            for kind, source in (("disk", {"landing_dir": str(landing)}),
                                 ("s3", {"landing_dir": "s3://bench-landing/landing",
                                         "storage_options": {"client_kwargs": {"endpoint_url": endpoint}}})):
                config = Path(tmp) / f"{kind}.yaml"
                config.write_text(yaml.safe_dump({"source": source, "partitions": {"start_date": "2026-10-01"}}))
                projects[kind] = ProjectConfigResource(config_path=str(config))
            results = {kind: _ticks(project, args.passes) for kind, project in projects.items()}
    finally:
        server.stop()
    load = os.getloadavg()
    folders = len({name.split("/")[0] for name in names})
    print(f"{args.objects:,} objects in {folders} day folders; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for kind, (timings, per_pass) in results.items():
        median, worst = statistics.median(timings), max(timings)
        ticks_per_pass = statistics.median(per_pass)
        print(f"{kind:>4}: median tick {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms over {len(timings)} ticks; "
              f"a complete pass takes {ticks_per_pass:.0f} tick(s) ({sum(timings) / len(per_pass):.2f} s of ticks)")
    s3_median = statistics.median(results["s3"][0])
    s3_worst = max(results["s3"][0])
    print(f"{'PASS' if s3_worst < 1 else 'MISS'}  S3 tick < 1 s with {args.objects:,} objects (median "
          f"{s3_median * 1000:.0f} ms, worst {s3_worst * 1000:.0f} ms; disk median "
          f"{statistics.median(results['disk'][0]) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()

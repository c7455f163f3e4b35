"""landing_sensor tick time with 10,000 files in the landing directory, next to a bare os.scandir walk.

Usage: python bench/bench_sensor.py [--files N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import dagster as dg
import yaml


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()

    from eval_pipelines.ingestion.sensors import landing_sensor
    from eval_pipelines.resources import ProjectConfigResource

    with tempfile.TemporaryDirectory(prefix="bench_sensor_") as tmp:
        landing = Path(tmp) / "landing"
        for i in range(args.files):
            folder = landing / f"2026-09-{1 + i % 30:02d}" if i % 2 else landing / f"2026-10-{1 + i % 31:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"part-{i:05d}.jsonl").write_text("{}\n")
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump({"source": {"landing_dir": str(landing)}}))
        project = ProjectConfigResource(config_path=str(config))

        started = time.perf_counter()
        day_folders = os.listdir(landing)
        count = sum(len(os.listdir(landing / d)) for d in day_folders)
        bare = time.perf_counter() - started

        with dg.instance_for_test() as instance:
            timings, cursor = [], None
            for _ in range(3):
                context = dg.build_sensor_context(cursor=cursor, instance=instance, resources={"project": project})
                started = time.perf_counter()
                result = landing_sensor(context)
                timings.append(time.perf_counter() - started)
                cursor = result.cursor
    print(f"{count:,} files in {len(day_folders)} day folders; bare listdir walk {bare * 1000:.0f} ms")
    print(f"first tick (everything new): {timings[0] * 1000:.0f} ms; steady ticks: "
          f"{', '.join(f'{t * 1000:.0f} ms' for t in timings[1:])}; cursor {len(cursor):,} bytes")
    worst = max(timings)
    print(f"{'PASS' if worst < 1 else 'MISS'}  tick < 1 s with {count:,} files (worst {worst * 1000:.0f} ms)")


if __name__ == "__main__":
    main()

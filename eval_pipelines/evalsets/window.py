"""The trailing window of labeled_cases partitions in the lake: which days, and reading them lean.

The lake holds one Parquet file per day (``<lake>/labeled_cases/<YYYY-MM-DD>.parquet``). The window is the
``window_days`` days ending at the newest complete day present; the reading is column-pruned and done day by day so
10M cases fit in well under a gigabyte: pass 1 reads only what the design needs (ids, strata, tags, correctness),
pass 2 reads the replay columns of the few thousand selected rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from eval_pipelines.labeling.labels import LABELED_CASES_ASSET
from eval_pipelines.lake import Lake


def lake_days(lake: Lake, asset: str = LABELED_CASES_ASSET) -> dict[str, str]:
    """Days (``YYYY-MM-DD``) with a Parquet file for ``asset``, each with a change stamp of the file.

    The stamp is fsspec's ``checksum`` of the file's listing (size and modification time locally, the ETag on object
    stores): it changes whenever the partition is re-materialised, which is how a cumulative consumer notices that a
    day it already merged was re-run.
    """
    folder = lake.path(asset, "x").rsplit("/", 1)[0]
    if not lake.fs.exists(folder):
        return {}
    days: dict[str, str] = {}
    for info in lake.fs.ls(folder, detail=True):
        name = str(info["name"]).rsplit("/", 1)[-1]
        if not name.endswith(".parquet"):
            continue
        stem = name[: -len(".parquet")]
        try:
            date.fromisoformat(stem)
        except ValueError:
            continue
        days[stem] = f"{lake.fs.checksum(info['name']):x}"
    return dict(sorted(days.items()))


@dataclass(frozen=True)
class Window:
    start: date
    end: date
    days: list[str]  # present in the lake, ascending
    missing: list[str]  # in [start, end] but not in the lake

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1


def trailing_window(available: Iterable[str], window_days: int, today: date, include_today: bool = False) -> Window:
    """The ``window_days`` days ending at the newest available day (today only when ``include_today``).

    Anchoring on the newest day present rather than on the calendar keeps a lagging pipeline (or the demo, whose
    data can be in the past) from producing an empty window.
    """
    last_allowed = today if include_today else today - timedelta(days=1)
    candidates = sorted(day for day in available if date.fromisoformat(day) <= last_allowed)
    if not candidates:
        raise ValueError(f"no labeled_cases partition on or before {last_allowed}: materialise labeled_cases first")
    end = date.fromisoformat(candidates[-1])
    start = end - timedelta(days=window_days - 1)
    wanted = [(start + timedelta(days=i)).isoformat() for i in range(window_days)]
    present = set(candidates)
    return Window(start=start, end=end, days=[d for d in wanted if d in present],
                  missing=[d for d in wanted if d not in present])

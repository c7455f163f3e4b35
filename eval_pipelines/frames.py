"""Small readers of case-frame columns shared by the functional cores (no dagster)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def flag_column(cases: pd.DataFrame, name: str) -> np.ndarray:
    """A nullable boolean column as bool, null or absent read as False (nobody raised the flag)."""
    if name not in cases.columns:
        return np.zeros(len(cases), dtype=bool)
    return cases[name].astype("boolean").fillna(False).to_numpy(dtype=bool)

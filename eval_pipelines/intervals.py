"""Confidence intervals shared by the domains (KPIs and scored runs report the same Wilson interval)."""

import numpy as np
from scipy.special import ndtri


def wilson_interval(successes: np.ndarray | float, trials: np.ndarray | float,
                    level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (Wilson 1927; no continuity correction).

    Chosen over the normal (Wald) interval because accuracy sits near 1 and groups can be small: Wilson stays
    inside [0, 1] and keeps close to its nominal coverage there. Same as
    ``scipy.stats.binomtest(k, n).proportion_ci(level, method="wilson")``; NaN where ``trials`` is 0.
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = float(ndtri(0.5 + level / 2.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denominator = 1.0 + z * z / n
        center = (p + z * z / (2.0 * n)) / denominator
        half = z / denominator * np.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n))
        low = np.where(n > 0, np.clip(center - half, 0.0, 1.0), np.nan)
        high = np.where(n > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    return low, high

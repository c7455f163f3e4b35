"""Level and power of the numeric drift tests on discrete columns: KS vs the value-count chi-square.

Seeded: 200 runs per case, 14,000 reference rows (a 7-day window of 2,000) against 2,000 current rows. Prints, per
case, the share of p-values at or below 5 % and 1 % for each test (under the null the nominal levels; under a
shift the power). The figures are quoted in docs/drift.md ("Chi-square on value counts").
Usage: python bench/bench_drift_null.py
"""

from __future__ import annotations

import numpy as np

from eval_pipelines.drift.stats import EcdfBand, chi2_ordered, discrete_table, ks_2samp

RUNS = 200


def main() -> None:
    rng = np.random.default_rng(13)
    cases = [
        ("null Poisson(3)", 3.0, 3.0), ("null Poisson(20)", 20.0, 20.0),
        ("shift Poisson 3 -> 3.2", 3.0, 3.2), ("shift Poisson 20 -> 20.6", 20.0, 20.6),
    ]
    print(f"{'case':28} {'chi2 5%':>8} {'chi2 1%':>8} {'KS 5%':>8} {'KS 1%':>8}")
    for name, before, after in cases:
        chi2_p, ks_p = [], []
        for _ in range(RUNS):
            reference = np.sort(rng.poisson(before, 14_000).astype(float))
            current = np.sort(rng.poisson(after, 2_000).astype(float))
            table = discrete_table(EcdfBand.from_sorted(reference), current, max_values=50)
            chi2_p.append(chi2_ordered(table.reference, table.current).pvalue if table else np.nan)
            ks_p.append(ks_2samp(reference, current).pvalue)
        c, k = np.array(chi2_p), np.array(ks_p)
        print(f"{name:28} {np.mean(c <= 0.05):8.1%} {np.mean(c <= 0.01):8.1%} {np.mean(k <= 0.05):8.1%} "
              f"{np.mean(k <= 0.01):8.1%}")


if __name__ == "__main__":
    main()

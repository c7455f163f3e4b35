"""Scored runs: replay candidate systems, score, compare with the baseline, gate the release."""

"""Drift reports: each day of labeled_cases against a reference window, right at any sample size.

Functional core (no dagster): ``stats`` (the statistics, scipy-equal on raw arrays), ``profile`` (stored, mergeable
reference profiles), ``monitors`` (what is watched and how it is read), ``report`` (evidence + materiality
verdicts), ``render`` (Markdown and HTML). Dagster shell: ``assets`` (drift_profile, drift_report and its check),
``tables`` (drift_results). Command line: ``cli`` (``eval-pipelines drift``). See docs/drift.md.
"""

"""Labeling: implicit labels, correctness and failure-mode tags (labels.py), PII masking (pii.py)."""

"""Drift reports."""

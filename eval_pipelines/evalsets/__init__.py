"""Eval sets sampled from production."""

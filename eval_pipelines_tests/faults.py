"""Transient faults for the old-or-new tests: a rename or a write that fails once, then works."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def fail_first_rename(target_suffix: str, message: str) -> Callable[[Any, Any], None]:
    """``os.replace`` that fails the first rename onto a path ending in ``target_suffix``."""
    real_replace, failed = os.replace, []

    def replace(source, target):
        if str(target).endswith(target_suffix) and not failed:
            failed.append(target)
            raise OSError(message)
        return real_replace(source, target)

    return replace


def fail_first_call(function: Callable[..., Any], message: str) -> Callable[..., Any]:
    """``function`` whose first call raises ``OSError(message)`` (e.g. ``pq.write_table``: a full disk)."""
    failed: list[bool] = []

    def wrapper(*args, **kwargs):
        if not failed:
            failed.append(True)
            raise OSError(message)
        return function(*args, **kwargs)

    return wrapper

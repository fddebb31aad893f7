"""Validation of user-supplied names, keys and values. One place, so every adapter rejects the same things."""

from __future__ import annotations

import math
import re

from shipyard.core.errors import InvalidInput

MAX_NAME = 250
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_DESCRIPTION = 20000

# Keys may contain path-like separators (``train/loss``) but no control characters or leading slash.
_KEY = re.compile(r"^[A-Za-z0-9_\-\.\ /:]+$")
_NAME = re.compile(r"^[^\x00-\x1f/@]+$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def check_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must be a non-empty string", field=field)
    if len(value) > MAX_NAME:
        raise InvalidInput(f"{field} is {len(value)} characters long; the limit is {MAX_NAME}", field=field)
    if not _NAME.match(value):
        raise InvalidInput(f"{field} {value!r} contains '/', '@' or a control character", field=field)
    return value


def check_key(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field} must be a non-empty string", field=field)
    if len(value) > MAX_KEY:
        raise InvalidInput(f"{field} is {len(value)} characters long; the limit is {MAX_KEY}", field=field)
    if not _KEY.match(value) or value.startswith("/") or ".." in value.split("/"):
        raise InvalidInput(
            f"{field} {value!r} may contain only letters, digits, '_', '-', '.', ' ', ':' and '/'",
            field=field,
        )
    return value


def check_text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str):
        value = str(value)
    if len(value) > limit:
        raise InvalidInput(f"{field} is {len(value)} characters long; the limit is {limit}", field=field)
    return value


def check_alias(value: object) -> str:
    if not isinstance(value, str) or not _ALIAS.match(value) or len(value) > 100:
        raise InvalidInput(
            f"alias {value!r} must start with a letter or '_' and contain only letters, digits, '_' and '-'",
            field="alias",
        )
    if value.isdigit() or value == "latest":
        raise InvalidInput(f"alias {value!r} is reserved", field="alias")
    return value


def check_metric_value(value: object, key: str) -> float:
    """Metrics are numbers; NaN and ±inf are legitimate values and are kept."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy as np

            if isinstance(value, np.generic) and np.issubdtype(type(value), np.number):
                return float(value)
        except ImportError:  # pragma: no cover
            pass
        if isinstance(value, str) and value.strip().lower() in (
            "nan",
            "inf",
            "+inf",
            "-inf",
            "infinity",
            "-infinity",
        ):
            return float(value.strip().lower().replace("infinity", "inf"))
        raise InvalidInput(f"metric {key!r} value {value!r} is not a number", field=f"metrics.{key}")
    return float(value)


def is_nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)

"""One number as a table cell: accuracies, shares, times. ``–`` when not measured; a non-finite value (NaN, Inf)
as what it means, ``diverged`` for a result and ``unknown`` for a time, a share or a setting, never ``nan%`` or
``inf h``."""

from __future__ import annotations

import math
from typing import Any, Optional

NOT_MEASURED = "–"
DIVERGED = "diverged"
UNKNOWN = "unknown"


def finite(value: Any) -> Optional[float]:
    """``value`` as a float, or ``None`` when it is missing or not finite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def pct(value: Any) -> str:
    """A fraction as a percentage with two decimals (``0.9123`` -> ``91.23%``); ``diverged`` when not finite."""
    if value is None:
        return NOT_MEASURED
    v = finite(value)
    return DIVERGED if v is None else f"{100 * v:.2f}%"


def share(value: Any) -> str:
    """A fraction as a percentage with no decimals (``dead_units``); ``unknown`` when not finite."""
    if value is None:
        return NOT_MEASURED
    v = finite(value)
    return UNKNOWN if v is None else f"{100 * v:.0f}%"


def minutes(value: Any) -> str:
    """Seconds as minutes (under 90 minutes) or hours; ``unknown`` when not finite or negative."""
    if value is None:
        return NOT_MEASURED
    v = finite(value)
    if v is None or v < 0:
        return UNKNOWN
    return f"{v / 60:.1f} min" if v < 5400 else f"{v / 3600:.2f} h"


def seconds(value: Any) -> str:
    """Seconds, whole (``12 s``); ``unknown`` when not finite or negative."""
    if value is None:
        return NOT_MEASURED
    v = finite(value)
    return UNKNOWN if v is None or v < 0 else f"{v:.0f} s"


def number(value: Any) -> str:
    """A setting such as a probe's beta or L2 strength (``g`` format); ``unknown`` when not finite."""
    if value is None:
        return NOT_MEASURED
    v = finite(value)
    return UNKNOWN if v is None else f"{v:g}"

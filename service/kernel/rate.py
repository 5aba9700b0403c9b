"""Rates on the command line: ``5``, ``10/s``, ``600/m``, ``100/h`` (requests per second)."""

from __future__ import annotations

import math
import re

_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


class Rate(float):
    """Requests per second, written ``N``, ``N/s``, ``N/m`` or ``N/h`` (argparse calls it)."""

    def __new__(cls, text: str | float) -> Rate:
        if isinstance(text, (int, float)):
            return super().__new__(cls, float(text))
        match = _RATE.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a rate like 10/s, 600/m or 5")
        value = float(match.group(1)) / _PER[match.group(2) or "s"]
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{text!r}: the rate must be above 0")
        return super().__new__(cls, value)

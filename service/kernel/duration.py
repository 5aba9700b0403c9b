"""Durations on the command line: ``3600``, ``90s``, ``30m``, ``8h``, ``1d``."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(float):
    """Seconds, parsed from a number with an optional unit (s, m, h, d)."""

    def __new__(cls, value: str | float) -> Duration:
        if isinstance(value, str):
            match = _DURATION.match(value.lower())
            if match is None:
                raise ValueError(f"not a duration: {value!r} (use e.g. 3600, 30m, 8h)")
            seconds = float(match[1]) * _UNIT[match[2]]
        else:
            seconds = float(value)
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"not a positive duration: {value!r}")
        return super().__new__(cls, seconds)

    def __str__(self) -> str:
        for unit in ("d", "h", "m"):
            if self % _UNIT[unit] == 0:
                return f"{int(self // _UNIT[unit])}{unit}"
        return f"{float(self):g}s"

    __repr__ = __str__

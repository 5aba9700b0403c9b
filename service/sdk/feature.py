"""Features as clients name them: ``"Years:int:1"`` or ``{"name", "dtype", "length"}``."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

DTYPES = ("int", "float", "str", "bool")


def finite_float(value: Any) -> float | None:
    """A feature value as a finite float: numbers, booleans and numeric strings; else None."""
    if isinstance(value, (bool, int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


@dataclasses.dataclass(frozen=True)
class Feature:
    name: str
    dtype: str = "float"
    length: int = 1

    @classmethod
    def parse(cls, value: Any) -> Feature:
        """Both forms clients send; ValueError names what is wrong."""
        if isinstance(value, Feature):
            return value
        if isinstance(value, str):
            parts = value.split(":")
            if len(parts) > 3 or not parts[0]:
                raise ValueError(f"feature {value!r} must look like NAME[:DTYPE[:LENGTH]]")
            name = parts[0]
            dtype = parts[1] if len(parts) > 1 else "float"
            length: Any = parts[2] if len(parts) > 2 else 1
        elif isinstance(value, dict):
            unknown = set(value) - {"name", "dtype", "length"}
            if unknown:
                raise ValueError(f"feature has unknown key {sorted(unknown)[0]!r}")
            if not isinstance(value.get("name"), str) or not value["name"]:
                raise ValueError("feature object needs a non-empty string 'name'")
            name = value["name"]
            dtype = value.get("dtype", "float")
            length = value.get("length", 1)
        else:
            raise ValueError(
                f"feature must be a 'NAME:DTYPE:LENGTH' string or an object, got {value!r}"
            )
        if dtype not in DTYPES:
            raise ValueError(f"feature {name!r} has unknown dtype {dtype!r} (use {DTYPES})")
        try:
            length = int(length)
        except (TypeError, ValueError):
            raise ValueError(f"feature {name!r} length must be an integer") from None
        if isinstance(length, bool) or length < 1:
            raise ValueError(f"feature {name!r} length must be at least 1")
        return cls(name=name, dtype=dtype, length=length)

    def spec(self) -> str:
        return f"{self.name}:{self.dtype}:{self.length}"


@dataclasses.dataclass(frozen=True)
class Signature:
    """The features a model reads, in order, and the one it predicts: what the Open Inference
    Protocol's model metadata is built from (docs/inference.md)."""

    inputs: tuple[Feature, ...]
    output: Feature

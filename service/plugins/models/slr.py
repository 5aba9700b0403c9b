"""``slr``: simple linear regression, y = slope·x + intercept on one feature, in NumPy.

Confidence is the coefficient of determination (R²) of the line on its training data, the
same for every prediction, as DFFML's slr reports it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from service.plugins.models.config import ModelConfig
from service.plugins.models.trainable import Prediction, Row, TrainableModel

if TYPE_CHECKING:
    import numpy as np

FORMAT = "dffml-service-http/slr/1"


@dataclasses.dataclass(frozen=True)
class SLRConfig(ModelConfig):
    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.features) != 1 or self.features[0].length != 1:
            raise ValueError("slr takes exactly one feature of length 1")


@dataclasses.dataclass(frozen=True)
class Line:
    slope: float
    intercept: float
    r2: float


class SLRModel(TrainableModel[SLRConfig, Line]):
    CONFIG = SLRConfig
    # A prediction is one multiply-add: always cheaper than a thread hop.
    INLINE_ROWS: ClassVar[int] = 1 << 30
    FILENAME: ClassVar[str] = "slr.json"

    def fit(self, rows: np.ndarray, targets: np.ndarray) -> Line:
        import numpy as np

        # Overflow raises FloatingPointError (an ArithmeticError: a 400), as Python floats do.
        with np.errstate(over="raise", invalid="raise"):
            xs = rows[:, 0]
            ys = np.asarray(targets, dtype=np.float64)
            mean_x = float(xs.mean())
            mean_y = float(ys.mean())
            dx = xs - mean_x
            sxx = float(dx @ dx)
            if sxx == 0:
                raise ValueError(f"slr needs at least two different values of {self._x!r}")
            dy = ys - mean_y
            slope = float(dx @ dy) / sxx
            intercept = mean_y - slope * mean_x
            residual = ys - (slope * xs + intercept)
            fitted = r_squared(float(residual @ residual), float(dy @ dy))
        if not all(math.isfinite(v) for v in (sxx, slope, intercept, fitted)):
            raise OverflowError("the sums overflow")
        return Line(slope, intercept, fitted)

    @property
    def _x(self) -> str:
        return self.config.features[0].name

    def predict_rows(self, state: Line, rows: list[Row]) -> list[Prediction]:
        # A few records (a request body): plain floats beat building arrays.
        return [(state.slope * row[0] + state.intercept, state.r2) for row in rows]

    def predict_array(self, state: Line, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        values = state.slope * rows[:, 0] + state.intercept
        return values, np.full(len(values), state.r2)

    def encode(self, signature: dict[str, Any], state: Line) -> bytes:
        body = {"format": FORMAT, "signature": signature, "line": dataclasses.asdict(state)}
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)

    def decode(self, data: bytes) -> tuple[dict[str, Any], Line]:
        try:
            body = orjson.loads(data)
            if body["format"] != FORMAT:
                raise ValueError(f"unknown format {body['format']!r}")
            line = body["line"]
            state = Line(float(line["slope"]), float(line["intercept"]), float(line["r2"]))
            signature = body["signature"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"not a saved slr model ({exc})") from None
        if not isinstance(signature, dict):
            raise ValueError("not a saved slr model")
        return signature, state


def r_squared(residual: float, total: float) -> float:
    """1 - SSres/SStot; for constant targets 1.0 when fitted exactly, else 0.0 (scikit-learn's
    convention) rather than a division by zero."""
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return 1.0 - residual / total

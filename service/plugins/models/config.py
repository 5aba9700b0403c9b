"""The config every built-in model shares: its features, where it is saved, how it batches."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from service.sdk.config import field
from service.sdk.feature import Feature

# Fields that say how the server batches predictions, not what the model learns: a saved model
# does not depend on them (TrainableModel.signature leaves them out).
BATCH_FIELDS = ("max_batch_size", "max_batch_time")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    features: list[Feature] = field('features the model reads: "Years:int:1" or {"name", ...}')
    predict: Feature = field('the feature to predict: "Salary:float:1"')
    location: Path | None = field(
        "directory the trained model is saved in and loaded from (inside the upload dir when a"
        " client names it; also accepted as 'directory'). Without it the model lives in memory",
        default=None,
        aliases=("directory",),
    )
    max_batch_size: int | None = field(
        "records this model predicts in one call at most when batching (docs/inference.md);"
        " unset: the server's -max-batch-size; 0: no batching for this model",
        default=None,
    )
    max_batch_time: float | None = field(
        "seconds a prediction of this model waits at most for others to batch with; unset:"
        " the server's -max-batch-time; 0: no batching for this model",
        default=None,
    )

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("'features' needs at least one feature")
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"feature {duplicated[0]!r} is listed twice")
        if self.predict.name in names:
            raise ValueError(f"predicted feature {self.predict.name!r} is also a feature")
        if self.predict.length != 1:
            raise ValueError(f"predicted feature {self.predict.name!r} must have length 1")
        if self.max_batch_size is not None and self.max_batch_size < 0:
            raise ValueError("'max_batch_size' must be 0 or more")
        if self.max_batch_time is not None and not 0 <= self.max_batch_time < math.inf:
            raise ValueError("'max_batch_time' must be 0 or a finite number of seconds")

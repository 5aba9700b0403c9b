"""The config every built-in model has: the features it reads, the one it predicts, and where
it is saved."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from service.sdk.config import field
from service.sdk.feature import Feature


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

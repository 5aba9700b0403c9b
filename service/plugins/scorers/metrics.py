"""Built-in scorers: ``mse``, ``mae``, ``r2`` for regressors and ``clf`` (accuracy) for
classifiers.

A scorer has the model predict the records and compares each predicted feature with the same
feature in the record, streaming: sums are kept, records are not.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import Any

from service.kernel.errors import BadRequest
from service.sdk.base import ModelContext, Scorer, ScorerContext, SourceContext
from service.sdk.config import EmptyConfig
from service.sdk.feature import finite_float
from service.sdk.records import Record


async def pairs(
    model: ModelContext, records: AsyncIterator[Record]
) -> AsyncIterator[tuple[Any, Any]]:
    """(true value, predicted value) for every feature the model predicts in every record."""
    async for record in model.predict(records):
        for name, predicted in (record.prediction or {}).items():
            if name not in record.features:
                raise BadRequest(f"Record {record.key!r} has no {name!r} to score against")
            yield record.features[name], predicted["value"]


def as_number(value: Any, what: str) -> float:
    result = finite_float(value)
    if result is None:
        raise BadRequest(f"{what} {value!r} is not a number")
    return result


@dataclasses.dataclass
class Errors:
    """Running sums over (truth, prediction) pairs; truth variance by Welford's method."""

    count: int = 0
    squared: float = 0.0
    absolute: float = 0.0
    mean: float = 0.0
    spread: float = 0.0  # sum of squared deviations of the truths from their mean

    def add(self, truth: float, predicted: float) -> None:
        error = truth - predicted
        self.count += 1
        self.squared += error * error
        self.absolute += abs(error)
        delta = truth - self.mean
        self.mean += delta / self.count
        self.spread += delta * (truth - self.mean)


class RegressionScorerContext(ScorerContext):
    async def score_from(self, model: ModelContext, sources: Sequence[SourceContext]) -> float:
        """Summed where the model reads the data when it can (the built-in regressors over
        csv and parquet sources: NumPy in the worker), else prediction by prediction."""
        sums = await model.error_sums(sources)
        if sums is None:
            return await super().score_from(model, sources)
        return self.aggregate(Errors(**dataclasses.asdict(sums)))

    async def score(self, model: ModelContext, records: AsyncIterator[Record]) -> float:
        errors = Errors()
        async for truth, predicted in pairs(model, records):
            errors.add(as_number(truth, "True value"), as_number(predicted, "Prediction"))
        if not errors.count:
            raise BadRequest("No records to score")
        return self.aggregate(errors)

    @abstractmethod
    def aggregate(self, errors: Errors) -> float: ...


class MSEContext(RegressionScorerContext):
    def aggregate(self, errors: Errors) -> float:
        return errors.squared / errors.count


class MAEContext(RegressionScorerContext):
    def aggregate(self, errors: Errors) -> float:
        return errors.absolute / errors.count


class R2Context(RegressionScorerContext):
    def aggregate(self, errors: Errors) -> float:
        if errors.spread == 0:
            # Constant truth: scikit-learn's convention instead of a division by zero.
            return 1.0 if errors.squared == 0 else 0.0
        return 1.0 - errors.squared / errors.spread


class AccuracyContext(ScorerContext):
    async def score_from(self, model: ModelContext, sources: Sequence[SourceContext]) -> float:
        """Counted where the model reads the data when it can (the built-in classifiers over
        csv and parquet sources), else prediction by prediction."""
        pairs = await model.class_pairs(sources)
        if pairs is None:
            return await super().score_from(model, sources)
        right = sum(count for truth, predicted, count in pairs if same_class(truth, predicted))
        return right / sum(count for _, _, count in pairs)

    async def score(self, model: ModelContext, records: AsyncIterator[Record]) -> float:
        right = total = 0
        async for truth, predicted in pairs(model, records):
            total += 1
            right += same_class(truth, predicted)
        if not total:
            raise BadRequest("No records to score")
        return right / total


def same_class(truth: Any, predicted: Any) -> bool:
    """Labels compare as numbers when both are numeric ("1" == 1 == 1.0), else as text."""
    try:
        return float(truth) == float(predicted)
    except (TypeError, ValueError):
        return str(truth) == str(predicted)


class MSEScorer(Scorer[EmptyConfig]):
    """Mean squared error (lower is better)."""

    def context(self) -> MSEContext:
        return MSEContext()


class MAEScorer(Scorer[EmptyConfig]):
    """Mean absolute error (lower is better)."""

    def context(self) -> MAEContext:
        return MAEContext()


class R2Scorer(Scorer[EmptyConfig]):
    """Coefficient of determination (1 is perfect)."""

    def context(self) -> R2Context:
        return R2Context()


class AccuracyScorer(Scorer[EmptyConfig]):
    """Share of records whose predicted class is the true one."""

    def context(self) -> AccuracyContext:
        return AccuracyContext()

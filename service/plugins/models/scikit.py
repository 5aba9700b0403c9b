"""scikit-learn models under the names DFFML clients use: ``scikitlr``, ``scikitlor``,
``scikitrf``, ``scikitrfr``, ``scikitknn``.

Hyper-parameters are config fields with scikit-learn's defaults. Classifiers report the
probability of the predicted class as confidence; regressors report R² on their training data
(the same for every prediction). Models are saved with skops, which loads only an allowlist of
types: a model file planted in the upload dir cannot run code the way a pickle could.

scikit-learn is imported on first use (in a worker thread), so servers that never train or load
one start without paying for the import.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from service.plugins.models.config import ModelConfig
from service.plugins.models.trainable import (
    ConfigT,
    TrainableModel,
)
from service.sdk.config import field
from service.sdk.progress import progress

if TYPE_CHECKING:
    import numpy as np

FORMAT = "dffml-service-http/scikit/1"

# Types inside fitted estimators that skops does not trust by default but that hold only data.
TRUSTED_TYPES = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
    }
)
TRUSTED_PREFIXES = ("sklearn.metrics._dist_metrics.",)


@dataclasses.dataclass
class Fitted:
    estimator: Any
    # R² on the training data for regressors; None for classifiers (they use probabilities).
    r2: float | None


class ScikitModel(TrainableModel[ConfigT, Fitted]):
    FILENAME: ClassVar[str] = "model.skops"
    # The estimator class as (module, name). Every config field a subclass adds beyond
    # ModelConfig's is one of its keyword arguments, under scikit-learn's own name.
    ESTIMATOR: ClassVar[tuple[str, str]]

    def make_estimator(self) -> Any:
        """A fresh, unfitted estimator with the configured hyper-parameters."""
        module, name = self.ESTIMATOR
        estimator_cls = getattr(importlib.import_module(module), name)
        return estimator_cls(**hyperparameters(self.config))

    def fit(self, rows: np.ndarray, targets: np.ndarray) -> Fitted:
        estimator = self.make_estimator()
        x, y = rows, targets
        trees = getattr(self.config, "n_estimators", None)
        if isinstance(trees, int) and trees >= GROW_STEPS and hasattr(estimator, "warm_start"):
            _grow(estimator, x, y, trees)
        else:
            estimator.fit(x, y)
        r2 = None if self.CLASSIFIER else float(estimator.score(x, y))
        return Fitted(estimator, r2)

    def predict_array(self, state: Fitted, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        if not self.CLASSIFIER:
            confidence = state.r2 if state.r2 is not None else 0.0
            values = state.estimator.predict(rows)
            return values, np.full(len(values), confidence)
        probabilities = state.estimator.predict_proba(rows)
        best = probabilities.argmax(axis=1)
        labels = state.estimator.classes_[best]
        return labels, probabilities[np.arange(len(rows)), best]

    def encode(self, signature: dict[str, Any], state: Fitted) -> bytes:
        from skops import io as skops_io

        body = {"format": FORMAT, "signature": signature, "estimator": state.estimator}
        if state.r2 is not None:
            body["r2"] = state.r2
        data: bytes = skops_io.dumps(body)
        return data

    def decode(self, data: bytes) -> tuple[dict[str, Any], Fitted]:
        from skops import io as skops_io

        try:
            untrusted = skops_io.get_untrusted_types(data=data)
        except Exception as exc:  # skops raises assorted errors on bytes that are not its format
            raise ValueError(f"not a saved scikit-learn model ({type(exc).__name__})") from None
        refused = [t for t in untrusted if not _trusted(t)]
        if refused:
            raise ValueError(f"it contains types that are not allowed: {', '.join(refused)}")
        try:
            body = skops_io.loads(data, trusted=untrusted)
        except Exception as exc:
            raise ValueError(f"not a saved scikit-learn model ({type(exc).__name__})") from None
        if not (isinstance(body, dict) and body.get("format") == FORMAT):
            raise ValueError("not a saved scikit-learn model")
        signature = body.get("signature")
        r2 = body.get("r2")
        if not isinstance(signature, dict) or not (r2 is None or isinstance(r2, float)):
            raise ValueError("not a saved scikit-learn model")
        return signature, Fitted(body["estimator"], r2)


# A forest is grown in this many steps (warm_start), each reported as progress: same trees as
# one fit (scikit-learn draws each tree's seed in order either way).
GROW_STEPS = 10


def _grow(estimator: Any, x: Any, y: Any, trees: int) -> None:
    step = -(-trees // GROW_STEPS)
    estimator.set_params(warm_start=True)
    grown = 0
    while grown < trees:
        grown = min(trees, grown + step)
        estimator.set_params(n_estimators=grown)
        estimator.fit(x, y)
        progress(grown, trees, "trees grown")
    estimator.set_params(warm_start=False)


_MODEL_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelConfig))


def hyperparameters(config: ModelConfig) -> dict[str, Any]:
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in _MODEL_FIELDS
    }


def _trusted(type_name: str) -> bool:
    return type_name in TRUSTED_TYPES or type_name.startswith(TRUSTED_PREFIXES)


def _at_least(name: str, value: float | None, minimum: float) -> None:
    if value is not None and value < minimum:
        raise ValueError(f"'{name}' must be at least {minimum}, got {value}")


def _at_most(name: str, value: float | None, maximum: float) -> None:
    """Upper bounds: a value that passes validation and then overflows a C integer inside
    scikit-learn, or asks for days of work (a billion trees), is refused at configure."""
    if value is not None and value > maximum:
        raise ValueError(f"'{name}' must be at most {maximum}, got {value}")


# Hyper-parameter upper bounds (docs/limits.md). C integers inside scikit-learn are 32-bit.
MAX_ESTIMATORS = 10_000
MAX_DEPTH = 1_000
MAX_ITER = 1_000_000
MAX_LEAF_SIZE = 1_000_000
C_INT_MAX = 2**31 - 1
MAX_SEED = 2**32 - 1


def _seed(value: int | None) -> None:
    _at_least("random_state", value, 0)
    _at_most("random_state", value, MAX_SEED)


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"'{name}' must be greater than 0, got {value}")


# --- linear regression -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LinearRegressionConfig(ModelConfig):
    fit_intercept: bool = field("fit an intercept (False: the line goes through 0)", default=True)
    positive: bool = field("force the coefficients to be positive", default=False)


class LinearRegressionModel(ScikitModel[LinearRegressionConfig]):
    CONFIG = LinearRegressionConfig
    ESTIMATOR = ("sklearn.linear_model", "LinearRegression")
    # A linear model predicts a few dozen rows faster than a thread hop takes.
    INLINE_ROWS: ClassVar[int] = 64

    def predict_array(self, state: Fitted, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        # LinearRegression.predict is exactly this product; its input validation costs more
        # than the arithmetic for a few rows, and the rows are validated already.
        estimator = state.estimator
        values = rows @ estimator.coef_ + estimator.intercept_
        confidence = state.r2 if state.r2 is not None else 0.0
        return values, np.full(len(values), confidence)


# --- logistic regression -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LogisticRegressionConfig(ModelConfig):
    C: float = field("inverse of the regularisation strength", default=1.0)
    fit_intercept: bool = field("fit an intercept", default=True)
    max_iter: int = field("most iterations of the solver", default=100)
    tol: float = field("tolerance of the stopping criterion", default=1e-4)
    solver: Literal["lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga"] = field(
        "optimisation algorithm", default="lbfgs"
    )
    class_weight: Literal["balanced"] | None = field(
        "'balanced' weighs classes inversely to their frequency", default=None
    )
    random_state: int | None = field("seed for solvers that shuffle the data", default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("C", self.C)
        _at_least("max_iter", self.max_iter, 1)
        _at_most("max_iter", self.max_iter, MAX_ITER)
        _positive("tol", self.tol)
        _seed(self.random_state)


class LogisticRegressionModel(ScikitModel[LogisticRegressionConfig]):
    CONFIG = LogisticRegressionConfig
    ESTIMATOR = ("sklearn.linear_model", "LogisticRegression")
    CLASSIFIER = True
    INLINE_ROWS: ClassVar[int] = 64


# --- random forests ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ForestConfig(ModelConfig):
    n_estimators: int = field("number of trees", default=100)
    max_depth: int | None = field(
        "deepest a tree grows (null: until leaves are pure)", default=None
    )
    min_samples_split: int = field("fewest samples a node needs to be split", default=2)
    min_samples_leaf: int = field("fewest samples in a leaf", default=1)
    bootstrap: bool = field("train each tree on a bootstrap sample", default=True)
    random_state: int | None = field("seed, for reproducible forests", default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        _at_least("n_estimators", self.n_estimators, 1)
        _at_least("max_depth", self.max_depth, 1)
        _at_least("min_samples_split", self.min_samples_split, 2)
        _at_least("min_samples_leaf", self.min_samples_leaf, 1)
        _at_most("n_estimators", self.n_estimators, MAX_ESTIMATORS)
        _at_most("max_depth", self.max_depth, MAX_DEPTH)
        _at_most("min_samples_split", self.min_samples_split, C_INT_MAX)
        _at_most("min_samples_leaf", self.min_samples_leaf, C_INT_MAX)
        _seed(self.random_state)


@dataclasses.dataclass(frozen=True)
class RandomForestClassifierConfig(ForestConfig):
    criterion: Literal["gini", "entropy", "log_loss"] = field(
        "how a split is judged", default="gini"
    )
    max_features: Literal["sqrt", "log2"] | None = field(
        "features considered per split (null: all)", default="sqrt"
    )
    class_weight: Literal["balanced", "balanced_subsample"] | None = field(
        "weigh classes inversely to their frequency", default=None
    )


class RandomForestClassifierModel(ScikitModel[RandomForestClassifierConfig]):
    CONFIG = RandomForestClassifierConfig
    ESTIMATOR = ("sklearn.ensemble", "RandomForestClassifier")
    CLASSIFIER = True


@dataclasses.dataclass(frozen=True)
class RandomForestRegressorConfig(ForestConfig):
    criterion: Literal["squared_error", "absolute_error", "friedman_mse", "poisson"] = field(
        "how a split is judged", default="squared_error"
    )
    max_features: float = field("fraction of the features considered per split", default=1.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.max_features <= 1:
            raise ValueError(f"'max_features' must be in (0, 1], got {self.max_features}")


class RandomForestRegressorModel(ScikitModel[RandomForestRegressorConfig]):
    CONFIG = RandomForestRegressorConfig
    ESTIMATOR = ("sklearn.ensemble", "RandomForestRegressor")


# --- k-nearest neighbours ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KNeighborsConfig(ModelConfig):
    n_neighbors: int = field("neighbours that vote", default=5)
    weights: Literal["uniform", "distance"] = field(
        "'distance': closer neighbours weigh more", default="uniform"
    )
    algorithm: Literal["auto", "ball_tree", "kd_tree", "brute"] = field(
        "neighbour search algorithm", default="auto"
    )
    leaf_size: int = field("leaf size of the ball or k-d tree", default=30)
    p: float = field("power of the Minkowski metric (1: Manhattan, 2: Euclidean)", default=2.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        _at_least("n_neighbors", self.n_neighbors, 1)
        _at_least("leaf_size", self.leaf_size, 1)
        _at_least("p", self.p, 1)
        _at_most("n_neighbors", self.n_neighbors, C_INT_MAX)
        _at_most("leaf_size", self.leaf_size, MAX_LEAF_SIZE)


class KNeighborsModel(ScikitModel[KNeighborsConfig]):
    CONFIG = KNeighborsConfig
    ESTIMATOR = ("sklearn.neighbors", "KNeighborsClassifier")
    CLASSIFIER = True

    def fit(self, rows: np.ndarray, targets: np.ndarray) -> Fitted:
        if len(rows) < self.config.n_neighbors:
            raise ValueError(
                f"{len(rows)} records are fewer than n_neighbors={self.config.n_neighbors}"
            )
        return super().fit(rows, targets)

"""The built-in models' work where the server's executor runs it: a local worker process or a
Dask worker (see :mod:`service.sdk.offload`).

These functions are pickled to the worker by reference, with the model's class, its config
and (to predict) its fitted state; errors come back as the errors the in-server path raises,
so a client sees the same 400 whichever executor ran the work. To train over sources with a
scan, what travels is the scans (paths and options): the worker reads the columns itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from service.kernel import safefs
from service.kernel.errors import BadRequest, ServiceError

if TYPE_CHECKING:
    import numpy as np

    from service.plugins.models.trainable import Prediction, Row, TrainableModel
    from service.sdk.columns import ClassPairs, ColumnType, ErrorSums, Scan

StateT = TypeVar("StateT")


def fit(
    cls: type[TrainableModel[Any, StateT]],
    config: Any,
    rows: np.ndarray,
    targets: np.ndarray,
    roots: tuple[Path, ...] = (),
) -> StateT:
    """Train (and save to ``location``) on the worker. ``roots``: the upload dirs, below which
    the model is saved without following links (service/kernel/safefs.py)."""
    safefs.register_roots(roots)
    return train(cls(config), rows, targets)


def fit_scans(
    cls: type[TrainableModel[Any, StateT]],
    config: Any,
    scans: list[Scan],
    columns: dict[str, ColumnType],
    roots: tuple[Path, ...] = (),
) -> StateT | None:
    """Read the columns of ``scans`` here, then train; None: read the records instead."""
    safefs.register_roots(roots)
    return train_scans(cls(config), scans, columns)


def train_scans(
    model: TrainableModel[Any, StateT], scans: list[Scan], columns: dict[str, ColumnType]
) -> StateT | None:
    from service.plugins.models.columnar import Unfit, arrays

    try:
        rows, targets = arrays(model, scans, columns)
    except Unfit:
        return None
    except OSError as exc:
        raise BadRequest(f"Reading the source failed: {exc.strerror or exc}") from None
    return train(model, rows, targets)


def error_sums(
    cls: type[TrainableModel[Any, StateT]],
    config: Any,
    state: StateT,
    scans: list[Scan],
    columns: dict[str, ColumnType],
    roots: tuple[Path, ...] = (),
) -> ErrorSums | None:
    """A regressor's errors over the rows of ``scans``, read and predicted here; None: the
    scorer must compare record by record."""
    from service.plugins.models.columnar import error_sums as columnar_error_sums

    safefs.register_roots(roots)
    try:
        return columnar_error_sums(cls(config), state, scans, columns)
    except OSError as exc:
        raise BadRequest(f"Reading the source failed: {exc.strerror or exc}") from None


def class_pairs(
    cls: type[TrainableModel[Any, StateT]],
    config: Any,
    state: StateT,
    scans: list[Scan],
    columns: dict[str, ColumnType],
    roots: tuple[Path, ...] = (),
) -> ClassPairs | None:
    """A classifier's (truth, prediction, count) over the rows of ``scans``, read and
    predicted here; None: the scorer must compare record by record."""
    from service.plugins.models.columnar import class_pairs as columnar_class_pairs

    safefs.register_roots(roots)
    try:
        return columnar_class_pairs(cls(config), state, scans, columns)
    except OSError as exc:
        raise BadRequest(f"Reading the source failed: {exc.strerror or exc}") from None


def train(model: TrainableModel[Any, StateT], rows: np.ndarray, targets: np.ndarray) -> StateT:
    """Fit and save ``model``, its failures as the errors a client is shown (in a worker, or on
    the model's training thread when there is no worker)."""
    try:
        return model.fit_and_save(rows, targets)
    except ValueError as exc:
        raise BadRequest(f"Training failed: {exc}") from None
    except ArithmeticError as exc:
        raise BadRequest(f"Training failed: the numbers are beyond float range ({exc})") from None
    except OSError as exc:
        raise ServiceError(
            f"Training finished but saving the model failed: {exc.strerror or exc}"
        ) from None


def predict(
    cls: type[TrainableModel[Any, StateT]], config: Any, state: StateT, rows: list[Row]
) -> list[Prediction]:
    """(value, confidence) for each row, on the worker."""
    try:
        return cls(config).predict_rows(state, rows)
    except ValueError as exc:
        raise BadRequest(f"Prediction failed: {exc}") from None
    except ArithmeticError as exc:
        raise BadRequest(f"Prediction failed: beyond float range ({exc})") from None


def predict_array(
    cls: type[TrainableModel[Any, StateT]], config: Any, state: StateT, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(values, confidences) for an array of rows, on the worker."""
    try:
        return cls(config).predict_array(state, rows)
    except ValueError as exc:
        raise BadRequest(f"Prediction failed: {exc}") from None
    except ArithmeticError as exc:
        raise BadRequest(f"Prediction failed: beyond float range ({exc})") from None

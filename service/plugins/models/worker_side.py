"""The built-in models' work where the server's executor runs it: a local worker process or a
Dask worker (see :mod:`service.sdk.offload`).

These functions are pickled to the worker by reference, with the model's class, its config
and (to predict) its fitted state; errors come back as the errors the in-server path raises,
so a client sees the same 400 whichever executor ran the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from service.kernel import safefs
from service.kernel.errors import BadRequest, ServiceError

if TYPE_CHECKING:
    from service.plugins.models.trainable import Prediction, Row, TrainableModel

StateT = TypeVar("StateT")


def fit(
    cls: type[TrainableModel[Any, StateT]],
    config: Any,
    rows: list[Row],
    targets: list[Any],
    roots: tuple[Path, ...] = (),
) -> StateT:
    """Train (and save to ``location``) on the worker. ``roots``: the upload dirs, below which
    the model is saved without following links (service/kernel/safefs.py)."""
    safefs.register_roots(roots)
    return train(cls(config), rows, targets)


def train(model: TrainableModel[Any, StateT], rows: list[Row], targets: list[Any]) -> StateT:
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

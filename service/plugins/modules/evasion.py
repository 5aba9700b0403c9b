"""``evasion``: a black-box evasion attack on a trained model's inputs.

The attack knows nothing about the model but its predictions, which it asks the server for
through ``ModuleServices.predict`` (the same path as ``POST /model/{ctx}/predict``). For every
row of the input CSV it measures, one feature at a time, what moving that feature by the budget
``+ε`` and ``-ε`` does to the model's output (two queries per feature), keeps each move that
helps the goal, and applies all of them together: the result stays inside the L∞ ball of radius
ε around the row. For a linear model this is exactly the best perturbation in that ball (the
fast-gradient-sign step, with the gradient's signs read off finite differences). For other models
it is a one-step coordinate-wise approximation. Either way the reported success is measured,
not assumed: the perturbed rows are predicted again and compared with the originals.

Goals: ``increase`` or ``decrease`` a regressor's prediction (success: it moved that way by more
than ``min_shift``), or ``flip`` a classifier's label (the probe score is the confidence in the
original label, which moving away from lowers; success: the predicted label changed).

Everything but the predictions runs in worker processes: reading the files, building every
probe record (written to a spool file beside the outputs, a batch at a time), choosing the moves
and building the perturbed rows, writing the reports. The server only reads the spool a batch at
a time (in a thread) and has the model predict each batch, since the models live there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pickle
import statistics
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

from service.kernel.errors import BadRequest
from service.kernel.sandbox import save_temp_name
from service.plugins.modules.tabular import number, output_name, read_csv, write_csv
from service.sdk.config import field
from service.sdk.modules import Function, Job, Module, ModuleContext, ModuleServices, Tag
from service.sdk.records import Record

Goal = Literal["flip", "increase", "decrease"]

# Bounds on what one run makes the server hold: the probe records (one per row, plus two per
# row and attacked feature) are built by the worker, and read and predicted by the server a
# batch at a time; the predictions (key, value, confidence) of all of them are kept.
MAX_ROWS = 10_000
MAX_PROBES = 200_000
PROBE_BATCH = 2_000


@dataclasses.dataclass(frozen=True)
class EvadeOptions:
    model: str = field("label of the open model context to attack (trained through the API)")
    goal: Goal = field("flip a classifier's label, or increase / decrease a regressor's prediction")
    epsilon: float = field("largest change of any one feature (see scale)", default=0.1)
    scale: Literal["std", "absolute"] = field(
        "epsilon in standard deviations of each column (std) or in the column's own units",
        default="std",
    )
    features: list[str] = field(
        "columns the attacker may change; empty: every numeric column", default_factory=list
    )
    min_shift: float = field(
        "increase/decrease: the prediction must move by more than this to count", default=0.0
    )
    clip: bool = field("keep changed values within the column's observed range", default=True)
    max_rows: int = field(
        f"attack at most this many rows of each file (the first); at most {MAX_ROWS}",
        default=1000,
    )

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be greater than 0, got {self.epsilon}")
        if self.min_shift < 0:
            raise ValueError(f"min_shift must be 0 or more, got {self.min_shift}")
        if not 1 <= self.max_rows <= MAX_ROWS:
            raise ValueError(f"max_rows must be from 1 to {MAX_ROWS}, got {self.max_rows}")


@dataclasses.dataclass
class Target:
    """One input file's attacked rows and the budget of each column."""

    name: str
    columns: list[str]
    rows: list[list[str]]
    budgets: dict[str, float]
    bounds: dict[str, tuple[float, float]]
    skipped_rows: int

    def features(self, row: list[str], changes: dict[str, float] | None = None) -> dict[str, Any]:
        """A row as a record's features: numbers as numbers, ``changes`` added to columns."""
        features: dict[str, Any] = {}
        for column, cell in zip(self.columns, row, strict=True):
            value = number(cell)
            features[column] = cell if value is None else value
        for column, delta in (changes or {}).items():
            features[column] = self.moved(column, features[column], delta)
        return features

    def moved(self, column: str, value: float, delta: float) -> float:
        low, high = self.bounds[column]
        return min(max(value + delta, low), high)


# --- worker steps ---------------------------------------------------------------------------


def plan(job: Job) -> list[Target]:
    """Read each input and work out which columns may move, and by how much."""
    options: EvadeOptions = job.options
    targets = []
    for source in job.inputs:
        table = read_csv(source.path, source.name)
        if not table.rows:
            raise ValueError(f"{source.name} has no rows to attack")
        columns = {
            name: [number(row[i]) for row in table.rows] for i, name in enumerate(table.columns)
        }
        numeric = {
            name: [float(v) for v in values if v is not None]
            for name, values in columns.items()
            if None not in values
        }
        chosen = options.features or list(numeric)
        for column in chosen:
            table.column(column, source.name)
            if column not in numeric:
                raise ValueError(f"column {column!r} of {source.name} is not numeric")
        budgets: dict[str, float] = {}
        bounds: dict[str, tuple[float, float]] = {}
        for column in chosen:
            values = numeric[column]
            spread = statistics.pstdev(values) if options.scale == "std" else 1.0
            budgets[column] = options.epsilon * spread
            unbounded = (float("-inf"), float("inf"))
            bounds[column] = (min(values), max(values)) if options.clip else unbounded
        targets.append(
            Target(
                name=source.name,
                columns=table.columns,
                rows=table.rows[: options.max_rows],
                budgets={c: b for c, b in budgets.items() if b > 0},
                bounds=bounds,
                skipped_rows=max(0, len(table.rows) - options.max_rows),
            )
        )
    return targets


def plan_and_probe(job: Job, spool: Path) -> tuple[list[Target], int]:
    """``plan``, then every probe record written to ``spool`` in pickled batches of
    PROBE_BATCH (none when there would be more than MAX_PROBES); the targets and the count."""
    targets = plan(job)
    count = sum(len(t.rows) * (1 + 2 * len(t.budgets)) for t in targets)
    if count <= MAX_PROBES:
        with spool.open("wb") as file:
            batch: list[Record] = []
            for probe in _probes(targets):
                batch.append(probe)
                if len(batch) == PROBE_BATCH:
                    pickle.dump(batch, file, pickle.HIGHEST_PROTOCOL)
                    batch = []
            if batch:
                pickle.dump(batch, file, pickle.HIGHEST_PROTOCOL)
    return targets, count


def choose_and_perturb(
    targets: list[Target], goal: Goal, predictions: dict[str, tuple[Any, float]]
) -> tuple[list[list[dict[str, float]]], list[Record]]:
    """``choose``, and every row with its chosen changes applied, as records to predict."""
    changes = choose(targets, goal, predictions)
    adversarial = [
        Record(_key(t, r), target.features(row, changes[t][r]))
        for t, target in enumerate(targets)
        for r, row in enumerate(target.rows)
    ]
    return changes, adversarial


def choose(
    targets: list[Target], goal: Goal, predictions: dict[str, tuple[Any, float]]
) -> list[list[dict[str, float]]]:
    """For every row, the change of each column that helped the goal when probed alone."""
    chosen = []
    for t, target in enumerate(targets):
        per_row = []
        for r in range(len(target.rows)):
            original = predictions[_key(t, r)]
            base = _score(goal, original, original)
            changes: dict[str, float] = {}
            for column, budget in target.budgets.items():
                up = _score(goal, original, predictions[_key(t, r, column, "+")]) - base
                down = _score(goal, original, predictions[_key(t, r, column, "-")]) - base
                if up > 0 and up >= down:
                    changes[column] = budget
                elif down > 0:
                    changes[column] = -budget
            per_row.append(changes)
        chosen.append(per_row)
    return chosen


def _score(goal: Goal, original: tuple[Any, float], probe: tuple[Any, float]) -> float:
    """How far ``probe`` is towards the goal from the row's original prediction; higher is
    better. For flip: minus the confidence in the original label, or the confidence in another
    label once the label changed."""
    value, confidence = probe
    if goal == "flip":
        return -confidence if value == original[0] else confidence
    shift = float(value)
    return shift if goal == "increase" else -shift


def report(
    job: Job,
    targets: list[Target],
    changes: list[list[dict[str, float]]],
    before: dict[str, tuple[Any, float]],
    after: dict[str, tuple[Any, float]],
    queries: int,
) -> Job:
    """Write each file's perturbed copy and an evasion report; tag both with the success."""
    options: EvadeOptions = job.options
    for t, target in enumerate(targets):
        results = []
        evaded = 0
        shifts = []
        for r in range(len(target.rows)):
            original, adversarial = before[_key(t, r)], after[_key(t, r)]
            success = _evaded(options, original[0], adversarial[0])
            evaded += success
            if options.goal != "flip":
                shifts.append(float(adversarial[0]) - float(original[0]))
            results.append(
                {
                    "row": r,
                    "changes": changes[t][r],
                    "original": {"value": original[0], "confidence": original[1]},
                    "adversarial": {"value": adversarial[0], "confidence": adversarial[1]},
                    "evaded": success,
                }
            )
        attacked = len(target.rows)
        rate = evaded / attacked
        stem = PurePosixPath(target.name).stem
        perturbed = [
            [target.features(row, changes[t][r])[column] for column in target.columns]
            for r, row in enumerate(target.rows)
        ]
        copy = job.output(
            output_name(job, f"{stem}.adversarial.csv"),
            rows=attacked,
            evaded=evaded,
            success_rate=rate,
        )
        write_csv(copy, target.columns, perturbed)
        summary = {
            "file": target.name,
            "model": options.model,
            "goal": options.goal,
            "epsilon": options.epsilon,
            "scale": options.scale,
            "budgets": target.budgets,
            "rows": attacked,
            "rows_not_attacked": target.skipped_rows,
            "evaded": evaded,
            "success_rate": rate,
            "mean_shift": statistics.fmean(shifts) if shifts else None,
            "queries": queries,
            "results": results,
        }
        out = job.output(
            output_name(job, f"{stem}.evasion.json"),
            rows=attacked,
            evaded=evaded,
            success_rate=rate,
        )
        out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
        job.log(
            f"{target.name}: {evaded} of {attacked} rows evaded ({rate:.1%}) with epsilon"
            f" {options.epsilon:g} ({options.scale}) on {len(target.budgets)} features"
        )
    return job


def _evaded(options: EvadeOptions, original: Any, adversarial: Any) -> bool:
    if options.goal == "flip":
        return bool(adversarial != original)
    shift = float(adversarial) - float(original)
    return (shift if options.goal == "increase" else -shift) > options.min_shift


def _key(target: int, row: int, column: str = "", direction: str = "") -> str:
    """A probe's record key; JSON keeps any column name unambiguous."""
    return json.dumps([target, row, column, direction])


# --- the module -----------------------------------------------------------------------------


class EvasionContext(ModuleContext):
    async def run(self, function: Function, job: Job, services: ModuleServices) -> Job:
        options: EvadeOptions = job.options
        # A temporary's name (never listed or served; swept after a crash), removed before
        # the outputs are collected.
        spool = job.output_dir / save_temp_name("evasion-probes")
        try:
            targets, count = await services.in_worker(plan_and_probe, job, spool)
            if count > MAX_PROBES:
                raise BadRequest(
                    f"evade would send {count} probes (rows x (1 + 2 x features)); at most"
                    f" {MAX_PROBES}: lower max_rows or name fewer features"
                )
            before: dict[str, tuple[Any, float]] = {}
            with await asyncio.to_thread(spool.open, "rb") as file:
                # One batch at a time, read off the loop: other requests are served between.
                while (batch := await asyncio.to_thread(_next_batch, file)) is not None:
                    before.update(await _predictions(services, options.model, batch))
        finally:
            await asyncio.to_thread(spool.unlink, True)
        changes, adversarial = await services.in_worker(
            choose_and_perturb, targets, options.goal, before
        )
        after: dict[str, tuple[Any, float]] = {}
        for start in range(0, len(adversarial), PROBE_BATCH):
            batch = adversarial[start : start + PROBE_BATCH]
            after.update(await _predictions(services, options.model, batch))
        queries = count + len(adversarial)
        return await services.in_worker(report, job, targets, changes, before, after, queries)


def _next_batch(file: IO[bytes]) -> list[Record] | None:
    """The next batch of probes ``plan_and_probe`` wrote (only ever read from the run's own
    spool file, written by the worker moments ago), or None at its end."""
    try:
        batch: list[Record] = pickle.load(file)
    except EOFError:
        return None
    return batch


def _probes(targets: list[Target]) -> Iterator[Record]:
    """Each row as it is, then moved by +budget and -budget one feature at a time."""
    for t, target in enumerate(targets):
        for r, row in enumerate(target.rows):
            yield Record(_key(t, r), target.features(row))
            for column, budget in target.budgets.items():
                for direction, delta in (("+", budget), ("-", -budget)):
                    yield Record(
                        _key(t, r, column, direction), target.features(row, {column: delta})
                    )


async def _predictions(
    services: ModuleServices, model: str, records: list[Record]
) -> dict[str, tuple[Any, float]]:
    """``key → (value, confidence)`` of the model's only predicted feature."""
    out: dict[str, tuple[Any, float]] = {}
    if not records:
        return out
    for record in await services.predict(model, records):
        prediction = record.prediction or {}
        if len(prediction) != 1:
            raise BadRequest(
                f"Model context {model!r} must predict exactly one feature to be attacked,"
                f" got {sorted(prediction)}"
            )
        (result,) = prediction.values()
        out[record.key] = (result["value"], float(result.get("confidence") or 0.0))
    return out


class Evasion(Module[Any]):
    """Adversarial examples against models trained through the API: how little must an input
    change for the model to answer differently? ``evade`` perturbs each row of a CSV within a
    budget, using only the model's predictions, and reports which rows evaded the model."""

    TAGLINE = "Black-box evasion attacks on trained models"
    FUNCTIONS = (
        Function(
            name="evade",
            help="Perturb each row within epsilon per feature to flip a classifier's label or"
            " shift a regressor's prediction; writes NAME.adversarial.csv and"
            " NAME.evasion.json with the measured success rate",
            options=EvadeOptions,
            modifies_input_files=True,
            tags=(
                Tag("rows", "int", "rows attacked"),
                Tag("evaded", "int", "rows whose prediction the attack changed as asked"),
                Tag("success_rate", "float", "evaded / rows, measured by predicting again"),
            ),
        ),
    )

    def context(self) -> EvasionContext:
        return EvasionContext(self)

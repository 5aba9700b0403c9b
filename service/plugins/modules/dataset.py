"""``dataset``: describe, split and convert the tables clients upload."""

from __future__ import annotations

import dataclasses
import json
import random
import statistics
from typing import Any

from service.plugins.modules.tabular import Table, number, output_name, read_csv, write_csv
from service.sdk.config import field
from service.sdk.modules import Function, Job, Module, Tag

ROWS = Tag("rows", "int", "data rows in the file")

# --- describe ------------------------------------------------------------------------------


def describe(job: Job) -> None:
    for source in job.inputs:
        table = read_csv(source.path, source.name)
        summary = {
            "file": source.name,
            "rows": len(table.rows),
            "columns": {
                name: _column_stats([row[i] for row in table.rows])
                for i, name in enumerate(table.columns)
            },
        }
        out = job.output(
            output_name(job, f"{source.path.stem}.describe.json"),
            rows=len(table.rows),
            columns=len(table.columns),
        )
        out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        job.log(f"{source.name}: {len(table.rows)} rows, {len(table.columns)} columns")


def _column_stats(cells: list[str]) -> dict[str, Any]:
    """count and distinct of non-empty cells; mean, std (sample), min, max when all are numbers."""
    present = [cell for cell in cells if cell.strip()]
    stats: dict[str, Any] = {
        "count": len(present),
        "missing": len(cells) - len(present),
        "distinct": len(set(present)),
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
    }
    numbers = [number(cell) for cell in present]
    values = [v for v in numbers if v is not None]
    if values and len(values) == len(present):
        stats["mean"] = statistics.fmean(values)
        stats["std"] = statistics.stdev(values) if len(values) > 1 else None
        stats["min"] = min(values)
        stats["max"] = max(values)
    return stats


# --- split ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SplitOptions:
    ratio: float = field("share of the rows that go to the train file", default=0.8)
    seed: int = field("seed of the shuffle: the same seed gives the same split", default=0)
    stratify: str | None = field(
        "column whose classes keep their proportions in both files", default=None
    )
    shuffle: bool = field("shuffle before splitting (off: the first rows train)", default=True)

    def __post_init__(self) -> None:
        if not 0 < self.ratio < 1:
            raise ValueError(f"ratio must be between 0 and 1 (exclusive), got {self.ratio}")


def split(job: Job) -> None:
    options: SplitOptions = job.options
    for source in job.inputs:
        table = read_csv(source.path, source.name)
        order = list(range(len(table.rows)))
        if options.shuffle:
            random.Random(options.seed).shuffle(order)
        if options.stratify is None:
            train = set(order[: round(len(order) * options.ratio)])
        else:
            train = _stratified(table, order, options.stratify, options.ratio, source.name)
        parts = {
            "train": [table.rows[i] for i in order if i in train],
            "test": [table.rows[i] for i in order if i not in train],
        }
        for part, rows in parts.items():
            name = output_name(job, f"{source.path.stem}.{part}.csv")
            write_csv(job.output(name, rows=len(rows), part=part), table.columns, rows)
        job.log(
            f"{source.name}: {len(parts['train'])} train, {len(parts['test'])} test rows"
            + (f", stratified by {options.stratify}" if options.stratify else "")
        )


def _stratified(table: Table, order: list[int], column: str, ratio: float, source: str) -> set[int]:
    """Train rows taking ``ratio`` of every class; the total is still round(rows * ratio).

    Each class gets the floor of its share, and the rows left over go to the classes with the
    largest remainders (Hamilton's method), so no class is rounded twice in the same direction.
    """
    index = table.column(column, source)
    classes: dict[str, list[int]] = {}
    for i in order:
        classes.setdefault(table.rows[i][index], []).append(i)
    quotas = {label: len(rows) * ratio for label, rows in classes.items()}
    counts = {label: int(quota) for label, quota in quotas.items()}
    left = round(len(order) * ratio) - sum(counts.values())
    by_remainder = sorted(quotas, key=lambda label: quotas[label] - counts[label], reverse=True)
    for label in by_remainder[:left]:
        counts[label] += 1
    return {i for label, rows in classes.items() for i in rows[: counts[label]]}


# --- convert -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    numbers: bool = field(
        "csv → json: write cells holding numbers as JSON numbers, not strings", default=True
    )


def convert(job: Job) -> None:
    options: ConvertOptions = job.options
    for source in job.inputs:
        if source.path.suffix.lower() == ".json":
            columns, rows = _json_rows(source.path.read_text(encoding="utf-8"), source.name)
            out = job.output(
                output_name(job, f"{source.path.stem}.csv"), rows=len(rows), format="csv"
            )
            write_csv(out, columns, rows)
            count = len(rows)
        else:
            table = read_csv(source.path, source.name)
            records = [
                {
                    name: _cell(cell, options.numbers)
                    for name, cell in zip(table.columns, row, strict=True)
                }
                for row in table.rows
            ]
            count = len(records)
            out = job.output(
                output_name(job, f"{source.path.stem}.json"), rows=len(records), format="json"
            )
            out.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        job.log(f"{source.name} → {out.name}: {count} rows")


def _cell(cell: str, numbers: bool) -> Any:
    value = number(cell) if numbers else None
    return cell if value is None else value


def _json_rows(text: str, source: str) -> tuple[list[str], list[list[Any]]]:
    """Columns (in order of first appearance) and rows of a JSON list of flat objects."""
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"{source} must hold a JSON list of objects, one per row")
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    rows = [[_csv_value(record.get(name)) for name in columns] for record in records]
    return list(columns), rows


def _csv_value(value: Any) -> Any:
    """Scalars as they are, null as an empty cell, lists and objects as their JSON text."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class Dataset(Module[Any]):
    """Everyday work on uploaded tables: summary statistics for a first look, a reproducible
    train/test split (optionally stratified) before training, and conversion between CSV and
    JSON. Outputs land in a fresh ``outputs/<run-id>/`` folder; inputs are never changed."""

    TAGLINE = "Describe, split and convert CSV datasets"
    FUNCTIONS = (
        Function(
            name="describe",
            help="Per-column count, missing, distinct, and mean, std (sample), min, max of"
            " numeric columns, as a JSON file per input",
            target=describe,
            tags=(ROWS, Tag("columns", "int", "columns in the table")),
        ),
        Function(
            name="split",
            help="Split each CSV into NAME.train.csv and NAME.test.csv",
            target=split,
            options=SplitOptions,
            tags=(ROWS, Tag("part", "str", "train or test")),
        ),
        Function(
            name="convert",
            help="CSV to JSON (a list of row objects) and JSON to CSV",
            target=convert,
            options=ConvertOptions,
            optional_filetypes=("json",),
            tags=(ROWS, Tag("format", "str", "csv or json")),
        ),
    )

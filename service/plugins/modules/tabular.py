"""Reading and writing the tables modules work on (CSV with a header row; JSON lists of rows).

Runs in worker processes only. Problems with a file raise ValueError naming the file, which the
server answers as 400.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Any

from service.sdk.modules import Job


@dataclasses.dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]

    def column(self, name: str, source: str) -> int:
        """The index of column ``name``; ValueError listing the columns when it is missing."""
        if name not in self.columns:
            raise ValueError(
                f"column {name!r} not in {source} (columns: {', '.join(self.columns)})"
            )
        return self.columns.index(name)


def read_csv(path: Path, source: str) -> Table:
    """The header and rows of a CSV; every row must have as many fields as the header."""
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{source} is empty: a CSV needs a header row")
        if len(set(header)) != len(header):
            raise ValueError(f"{source} has a repeated column name in its header")
        rows = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{source} line {reader.line_num} has {len(row)} fields,"
                    f" the header has {len(header)}"
                )
            rows.append(row)
    return Table(header, rows)


def write_csv(path: Path, columns: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


def number(text: str) -> int | float | None:
    """The number a CSV cell holds (int when it is written as one), None when it holds none."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def output_name(job: Job, filename: str) -> str:
    """``filename``, or ``stem-2.ext``… when an earlier output of the run took it (two inputs
    ``a/x.csv`` and ``b/x.csv`` must not overwrite each other's results)."""
    if filename not in job.outputs:
        return filename
    stem, dot, extension = filename.partition(".")
    counter = 2
    while f"{stem}-{counter}{dot}{extension}" in job.outputs:
        counter += 1
    return f"{stem}-{counter}{dot}{extension}"

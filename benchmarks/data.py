"""Benchmark inputs, generated once and cached under .benchmarks/data (gitignored)."""

from __future__ import annotations

import os
import random
from pathlib import Path

COLUMNS = ("Years", "Expertise", "Trust", "Salary")
UPLOAD_BYTES = 256 * 1024 * 1024


def csv_path(data_dir: Path, rows: int) -> Path:
    """A CSV of ``rows`` records; Salary = 10 * Years + 10, so slr learns it exactly."""
    path = data_dir / f"rows-{rows}.csv"
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(rows)
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(COLUMNS) + "\n")
        batch = []
        for _ in range(rows):
            years = rng.randrange(0, 41)
            batch.append(f"{years},{rng.randrange(0, 11)},{rng.random():.4f},{10 * years + 10}\n")
            if len(batch) == 10_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
    os.replace(partial, path)
    return path


def upload_path(data_dir: Path, size: int = UPLOAD_BYTES) -> Path:
    """``size`` bytes of incompressible data to upload."""
    path = data_dir / f"upload-{size // (1024 * 1024)}MiB.bin"
    if path.exists() and path.stat().st_size == size:
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1024 * 1024)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        for i in range(size // len(block)):
            # Vary each MiB so nothing along the way can deduplicate or compress it.
            out.write(i.to_bytes(8, "little") + block[8:])
    os.replace(partial, path)
    return path

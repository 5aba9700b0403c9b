"""The start-up sweep of crash leftovers, at its documented boundary (docs/limits.md, "Temporary
files": every temporary "more than 60 s old" is removed, and the server "logs which").

Survivors of the mutation run over service/sandbox.py (docs/testing.md): the age boundary and
the log line were driven by no test. The clock is the test's, so no timing is involved.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from service import sandbox

NOW = 1_800_000_000.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.time, "time", lambda: NOW)


def leftover(path: Path, age: float) -> Path:
    path.write_text("half-written")
    os.utime(path, (NOW - age, NOW - age))
    return path


def test_temporaries_more_than_60_s_old_are_removed_and_logged(
    tmp_path: Path, clock: None, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "sub").mkdir()
    old = leftover(tmp_path / "sub" / ".a.csv.0123456789ab.tmp", 60.001)
    older = leftover(tmp_path / f".upload-{'f' * 32}.part", 3600)
    young = leftover(tmp_path / ".b.csv.0123456789ab.tmp", 59.999)
    other = leftover(tmp_path / ".notes.tmp", 3600)  # not a name the server writes
    with caplog.at_level(logging.WARNING, logger="service.sandbox"):
        removed = sandbox.sweep_temporaries(tmp_path)
    assert sorted(removed) == [older.name, "sub/" + old.name]
    assert (old.exists(), older.exists(), young.exists(), other.exists()) == (
        False,
        False,
        True,
        True,
    )
    assert [r.getMessage() for r in caplog.records] == [
        f"removed 2 leftover temporary file(s): {', '.join(removed)}"
    ]


def test_a_sweep_with_nothing_to_remove_logs_nothing(
    tmp_path: Path, clock: None, caplog: pytest.LogCaptureFixture
) -> None:
    leftover(tmp_path / ".b.csv.0123456789ab.tmp", 30)
    (tmp_path / "plain.csv").write_text("a\n")
    with caplog.at_level(logging.DEBUG, logger="service.sandbox"):
        assert sandbox.sweep_temporaries(tmp_path) == []
    assert caplog.records == []

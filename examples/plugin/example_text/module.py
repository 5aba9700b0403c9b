"""``text``: two functions over uploaded ``.txt`` (and ``.md``) files.

- ``redact`` writes a copy of each input with e-mail addresses or long digit runs masked: a
  function that *modifies its inputs*, so each copy keeps the input's name and lands in the run's
  output folder (the input itself is never touched).
- ``wordcount`` writes one JSON file per input with line and word counts and the most common
  words: a function that *creates new files*.

Each function's ``target`` runs in a worker process the server can stop, so it may block and
use the CPU freely. It must be a module-level function (it is pickled by name).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
from typing import Any, Literal

from service.sdk.config import field
from service.sdk.modules import Function, Job, Module, Tag

PATTERNS = {
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "digits": re.compile(r"\d{4,}"),
}
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


@dataclasses.dataclass(frozen=True)
class RedactOptions:
    what: Literal["email", "digits"] = field("what to mask: e-mail addresses or 4+ digit runs")
    mask: str = field("text written in place of each match", default="[REDACTED]")


def redact(job: Job) -> None:
    options: RedactOptions = job.options
    pattern = PATTERNS[options.what]
    for source in job.inputs:
        text = source.path.read_text(encoding="utf-8")
        redacted, count = pattern.subn(options.mask, text)
        job.modified(source, redactions=count).write_text(redacted, encoding="utf-8")
        job.log(f"{source.name}: {count} {options.what} match(es) masked")


@dataclasses.dataclass(frozen=True)
class WordcountOptions:
    top: int = field("how many of the most common words to list", default=5)
    lowercase: bool = field("count 'The' and 'the' as one word", default=True)

    def __post_init__(self) -> None:
        # A ValueError here is answered 400, naming the function, before any work starts.
        if self.top < 0:
            raise ValueError(f"top must be 0 or more, got {self.top}")


def wordcount(job: Job) -> None:
    options: WordcountOptions = job.options
    for source in job.inputs:
        text = source.path.read_text(encoding="utf-8")
        words = WORD.findall(text.lower() if options.lowercase else text)
        counts = collections.Counter(words)
        summary: dict[str, Any] = {
            "file": source.name,
            "lines": len(text.splitlines()),
            "words": len(words),
            "distinct": len(counts),
            "top": counts.most_common(options.top),
        }
        out = job.output(f"{source.path.stem}.wordcount.json", words=len(words))
        out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")


class TextModule(Module[Any]):
    """Small tools for text files: mask personal data before sharing a file, count words."""

    TAGLINE = "Redact and count words in text files"
    FUNCTIONS = (
        Function(
            name="redact",
            help="Mask e-mail addresses or digit runs; writes a redacted copy of each file",
            target=redact,
            options=RedactOptions,
            expected_filetype="txt",
            optional_filetypes=("md",),
            creates_new_files=False,
            modifies_input_files=True,
            tags=(Tag("redactions", "int", "matches masked in the file"),),
        ),
        Function(
            name="wordcount",
            help="Lines, words, distinct words and the most common words, as JSON",
            target=wordcount,
            options=WordcountOptions,
            expected_filetype="txt",
            optional_filetypes=("md",),
            tags=(Tag("words", "int", "words in the input"),),
        ),
    )

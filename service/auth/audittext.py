"""Audit values made safe before they are queued: encodable text, no control characters, capped.

The writer process encodes each line as JSON (orjson), which refuses lone surrogates (what a
header's bytes that are not UTF-8 become in Python); a line it cannot encode would end the
batch. Values a client chose (a path, a route variable, a method, a refusal's reason that
quotes a header, an external identity) are therefore cleaned here, in the server, before they
reach the queue: nothing a request sends can stop, delay or corrupt another request's line.

- lone surrogates become ``\\udcXX`` (the bytes stay visible, nothing is lost silently);
- control characters (C0, DEL, C1, the Unicode line and paragraph separators) become ``\\xNN`` or
  ``\\uNNNN``, so a reader splitting on lines or a terminal showing them is never fooled;
- a backslash becomes two, so an escape in the log was always made here, never sent as such;
- each value is capped at ``FIELD_MAX`` characters once escaped, what is cut replaced by
  ``…(N characters)``, N the length it had.

The common case (short printable ASCII without a backslash) costs three C-level string checks.
"""

from __future__ import annotations

from typing import Any

# Characters of one field: a path or a reason longer than this is cut (a URL is at most 8 KiB).
FIELD_MAX = 512
_ESCAPES = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
}
_PLAIN = (int, float, bool, type(None))


def clean(value: str) -> str:
    """``value`` safe to encode and to read as one line, at most ``FIELD_MAX`` characters
    (and the marker of a cut)."""
    if len(value) <= FIELD_MAX and value.isascii() and value.isprintable() and "\\" not in value:
        return value
    original = len(value)
    value = value[:FIELD_MAX].replace("\\", "\\\\")
    if not value.isascii():
        # Lone surrogates (bytes that were not UTF-8) become their \udcXX escape.
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    value = value.translate(_ESCAPES)
    if original > FIELD_MAX or len(value) > FIELD_MAX:
        return f"{value[:FIELD_MAX]}…({original} characters)"
    return value


def clean_value(value: Any) -> Any:
    """A field of an event line: numbers and None as they are, anything else as clean text."""
    if isinstance(value, _PLAIN):
        return value
    return clean(value if isinstance(value, str) else str(value))

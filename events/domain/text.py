"""Text as the store accepts it: Unicode NFC, no control characters, bounded length.

Every text field of every payload, and the reason of every envelope, goes through here, so
the HTTP API, HL7 v2, FHIR and bulk imports refuse the same input in the same way. A NUL
or other control character would be accepted by the store's JSON and then refused by
PostgreSQL's ``text`` columns in the projections: the write would answer ``201`` and never
reach the chart. Tab and newline are allowed only in free-text notes.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, StringConstraints

LINE_BREAKS = frozenset("\t\n")
# Unicode categories that have no place in clinical text: controls, surrogates, unassigned
# code points and private use (C0/C1 controls, NUL, DEL, lone surrogates, U+FFFF...).
REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Cn", "Co"})
# Format characters that can make displayed text differ from stored text.
REFUSED_FORMAT = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")
NAME_LIMIT = 200
NOTE_LIMIT = 1000


class TextRefused(ValueError):
    """The text holds a character the store does not accept (its position, never the text)."""


def clean_text(value: str, *, multiline: bool = False) -> str:
    """``value`` in NFC; raises ``TextRefused`` naming the first refused character."""
    normalised = unicodedata.normalize("NFC", value)
    for index, char in enumerate(normalised):
        if multiline and char in LINE_BREAKS:
            continue
        if char in REFUSED_FORMAT or unicodedata.category(char) in REFUSED_CATEGORIES:
            kind = "tab or line break" if char in LINE_BREAKS or char == "\r" else "character"
            raise TextRefused(
                f"{kind} U+{ord(char):04X} at position {index} is not accepted"
                + ("" if multiline else " (single-line text)")
            )
    return normalised


def _line(value: object) -> object:
    return clean_text(value) if isinstance(value, str) else value


def _note(value: str) -> str:
    return clean_text(value, multiline=True)


def _not_blank(value: str) -> str:
    # The length constraint runs before the strip here, so "   " would pass as "".
    if not value:
        raise ValueError("must not be blank")
    return value


# A short single-line text: names, units, substances.
Text = Annotated[
    str,
    BeforeValidator(_line),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_LIMIT),
    AfterValidator(_not_blank),
]
# A free-text note: reasons, legal bases; tab and newline allowed.
Note = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NOTE_LIMIT),
    AfterValidator(_note),
]

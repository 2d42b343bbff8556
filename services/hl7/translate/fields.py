"""Reading HL7 v2 messages by position: segments, fields, components, codes and times.

python-hl7 parses a message into nested lists whose depth depends on the text (a field
without ``^`` is a leaf); these wrappers answer plain strings by HL7 position
(``PID-3.4``), treat the HL7 null ``""`` as absent, and read the data types the
translations need: coded elements, timestamps and dates. Malformed values refuse the
message (``AR``) naming the position.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import hl7  # type: ignore[import-untyped, unused-ignore]

from services.hl7.contract import Refusal

HL7_NULL = '""'
# YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]: python-hl7 reads it, after this check that
# nothing else is in the field (it ignores trailing text).
_TS = re.compile(r"^\d{4}(?:\d{2}){0,5}(?:\.\d{1,4})?(?:[+-]\d{4})?$")


class Segment:
    """One segment of a parsed message, read by field, repetition, component, subcomponent."""

    def __init__(self, raw: Any, sequence: int = 1) -> None:
        self.raw = raw
        self.name = str(raw[0])
        # Which segment of its name this is in the message (the second OBX is 2).
        self.sequence = sequence

    def get(self, field: int, component: int = 1, repetition: int = 1, sub: int = 1) -> str:
        """The text at ``<name>-<field>.<component>.<sub>`` of one repetition ("" if absent)."""
        try:
            value = self.raw.extract_field(1, field, repetition, component, sub)
        except IndexError:
            return ""
        text = str(value).strip()
        return "" if text == HL7_NULL else text

    def has(self, field: int) -> bool:
        """Whether the field has any content."""
        return self.repetitions(field) > 0

    def repetitions(self, field: int) -> int:
        """How many repetitions the field has (0 when it is empty)."""
        if field >= len(self.raw):
            return 0
        value = self.raw(field)
        if str(value).strip() in ("", HL7_NULL):
            return 0
        if all(isinstance(item, hl7.Repetition) for item in value):
            return len(value)
        return 1

    def require(self, field: int, component: int = 1, what: str | None = None) -> str:
        """The text at a position, or ``AR`` naming it when it is empty."""
        text = self.get(field, component)
        if not text:
            label = what or f"{self.name}-{field}"
            raise Refusal("AR", self.at(field), f"{label} is required")
        return text

    def at(self, field: int) -> str:
        """The HL7 location of a field of this segment: ``OBX-5``, ``OBX[2]-5`` for a field
        of the second OBX."""
        if self.sequence > 1:
            return f"{self.name}[{self.sequence}]-{field}"
        return f"{self.name}-{field}"


class Message:
    """A parsed message as a sequence of ``Segment``."""

    def __init__(self, raw: Any) -> None:
        self.segments: list[Segment] = []
        seen: dict[str, int] = {}
        for item in raw:
            segment = Segment(item)
            seen[segment.name] = seen.get(segment.name, 0) + 1
            segment.sequence = seen[segment.name]
            self.segments.append(segment)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def first(self, name: str) -> Segment | None:
        """The first segment with this name, or None."""
        return next((s for s in self.segments if s.name == name), None)

    def require(self, name: str) -> Segment:
        """The first segment with this name, or ``AR`` when the message has none."""
        found = self.first(name)
        if found is None:
            raise Refusal("AR", name, f"the {name} segment is required")
        return found

    def groups(self, starts: str, members: frozenset[str]) -> list[list[Segment]]:
        """The segments from each ``starts`` up to the next one, keeping only ``members``."""
        found: list[list[Segment]] = []
        for segment in self.segments:
            if segment.name == starts:
                found.append([segment])
            elif found and segment.name in members:
                found[-1].append(segment)
        return found


@dataclass(frozen=True)
class Coded:
    """A coded element (CE / CWE): the code, its text and its coding system."""

    code: str
    text: str
    system: str


def coded(segment: Segment, field: int, repetition: int = 1) -> tuple[Coded, Coded]:
    """The primary and the alternate triplet of a CE / CWE field."""
    parts = [segment.get(field, c, repetition) for c in range(1, 7)]
    return Coded(*parts[0:3]), Coded(*parts[3:6])


def in_system(segment: Segment, field: int, systems: frozenset[str]) -> Coded:
    """The triplet of a coded field whose coding system is one of ``systems`` (the
    alternate one when only it is), else the primary one: the domain validates the code."""
    primary, alternate = coded(segment, field)
    if primary.system.upper() not in systems and alternate.system.upper() in systems:
        return alternate
    return primary


def text_of(segment: Segment, field: int) -> str:
    """The readable text of a coded field: its text component, else its code."""
    primary, _ = coded(segment, field)
    return primary.text or primary.code


def timestamp(segment: Segment, field: int, zone: tzinfo, component: int = 1) -> datetime | None:
    """An HL7 TS / DTM (``YYYY[MM[DD[HHMM[SS[.S...]]]]][+/-ZZZZ]``) in UTC, or None if empty.

    A time without an offset is in ``zone`` (the sender's local time). The answer is always
    a plain UTC datetime, so that a resent message builds exactly the same command."""
    text = segment.get(field, component)
    if not text:
        return None
    try:
        if not _TS.match(text):
            raise ValueError(text)
        parsed: datetime = hl7.parse_datetime(text)
    except ValueError:
        raise Refusal("AR", segment.at(field), f"{segment.at(field)} is not an HL7 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def calendar_date(segment: Segment, field: int) -> date | None:
    """An HL7 DT (a full ``YYYYMMDD``, a time after it ignored), or None if empty."""
    text = segment.get(field)
    if not text:
        return None
    digits = text[:8]
    try:
        if len(digits) < 8 or not digits.isdigit():
            raise ValueError(text)
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise Refusal(
            "AR", segment.at(field), f"{segment.at(field)} is not a full date (YYYYMMDD)"
        ) from None


def number(segment: Segment, field: int, component: int = 1) -> float | None:
    """An HL7 NM, or None if empty; ``AR`` when it is not a number."""
    text = segment.get(field, component)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Refusal("AR", segment.at(field), f"{segment.at(field)} is not a number") from None
    if not math.isfinite(value):
        raise Refusal("AR", segment.at(field), f"{segment.at(field)} is not a finite number")
    return value

"""What an import did, per resource: imported, already imported, or not mappable (why).

Every input resource gets exactly one line; the report counts them per resource type, so
nothing read is dropped without saying so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID


class Status(StrEnum):
    """What became of one resource."""

    IMPORTED = "imported"
    ALREADY = "already imported"
    NOT_MAPPABLE = "not mappable"


@dataclass(frozen=True)
class Line:
    """One resource's outcome: the backbone id it became, or why it was not mapped.

    ``notes`` are shown with it and do not block (a drug that was not screened)."""

    index: int
    resource_type: str
    status: Status
    backbone_id: UUID | None = None
    reason: str | None = None
    notes: tuple[str, ...] = ()
    http_status: int = 201


@dataclass
class Report:
    """The lines of one import, in input order once ``sorted_lines`` is read."""

    lines: dict[int, Line] = field(default_factory=dict)

    def add(self, line: Line) -> None:
        self.lines[line.index] = line

    def sorted_lines(self) -> list[Line]:
        return [self.lines[i] for i in sorted(self.lines)]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per resource type, how many lines have each status (every status listed)."""
        found: dict[str, dict[str, int]] = {}
        for line in self.lines.values():
            row = found.setdefault(line.resource_type, {s.value: 0 for s in Status})
            row[line.status.value] += 1
        return dict(sorted(found.items()))

    def reasons(self) -> dict[str, dict[str, int]]:
        """Per resource type, each reason for not mapping and how many it applies to."""
        found: dict[str, Counter[str]] = {}
        for line in self.lines.values():
            if line.status is Status.NOT_MAPPABLE:
                found.setdefault(line.resource_type, Counter())[line.reason or "unknown"] += 1
        return {kind: dict(reasons) for kind, reasons in sorted(found.items())}

    def totals(self) -> dict[str, int]:
        """How many resources had each status."""
        found = {s.value: 0 for s in Status}
        for line in self.lines.values():
            found[line.status.value] += 1
        return found

    def summary(self) -> str:
        t = self.totals()
        return (
            f"{len(self.lines)} resources: {t['imported']} imported, "
            f"{t['already imported']} already imported, {t['not mappable']} not mappable"
        )

    def to_json(self) -> dict[str, Any]:
        """The counts, the reasons and the totals (no clinical values, no identifiers)."""
        return {"counts": self.counts(), "reasons": self.reasons(), "totals": self.totals()}

"""When something can have happened clinically: after 1900, after the patient's birth, and
not more than a few minutes in the future (clocks of bedside devices drift)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from events.domain.errors import ClinicalRuleViolation

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)


def clinical_time(
    occurred_at: datetime, now: datetime, birth_date: date | None, field: str = "occurred_at"
) -> datetime:
    """``occurred_at`` in UTC, or ``ClinicalRuleViolation`` on ``field`` saying why."""
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise ClinicalRuleViolation(f"{field} needs a time zone", field=field)
    # Compared before converting: year 1 with a positive offset overflows in conversion.
    if occurred_at.year < EARLIEST.year:
        raise ClinicalRuleViolation(f"{field} is before 1900", field=field)
    try:
        utc = occurred_at.astimezone(UTC)
    except OverflowError:
        raise ClinicalRuleViolation(f"{field} is out of range", field=field) from None
    if utc < EARLIEST:
        raise ClinicalRuleViolation(f"{field} is before 1900", field=field)
    if utc > now + CLOCK_SKEW:
        raise ClinicalRuleViolation(f"{field} is more than 5 minutes in the future", field=field)
    if birth_date is not None and occurred_at.date() < birth_date:
        raise ClinicalRuleViolation(f"{field} is before the patient's birth date", field=field)
    return utc

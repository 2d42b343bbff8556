"""Errors the write side raises; the API maps each to an HTTP status and a problem+json body."""

from __future__ import annotations

from uuid import UUID


class DomainError(Exception):
    """A command was refused; ``str(err)`` is a message for the person who sent it."""

    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ClinicalRuleViolation(DomainError):
    """The command breaks a clinical rule (impossible value, forbidden transition, ...)."""


class ImpossibleValueError(ClinicalRuleViolation):
    """A measured value outside what a living patient can have (e.g. heart rate 900)."""


class UnknownUnitError(ClinicalRuleViolation):
    """A unit that is not a known UCUM spelling, or not convertible for the analyte."""


class UnknownCodeError(ClinicalRuleViolation):
    """A code (LOINC, drug) the reference data does not know where it must."""


class OverrideRequired(ClinicalRuleViolation):
    """A safety alert (allergy, dose) that only an explicit override reason may pass."""

    def __init__(self, message: str, alerts: list[str]) -> None:
        super().__init__(message, field="override_reason")
        self.alerts = alerts


class ReasonRequired(DomainError):
    """Changes, discontinuations, amendments, cancellations and break-glass need a reason."""

    def __init__(self, what: str) -> None:
        super().__init__(f"a reason is required to {what}", field="reason")


class NotFound(DomainError):
    """The aggregate the command names does not exist."""

    def __init__(self, kind: str, ident: UUID) -> None:
        super().__init__(f"{kind} {ident} not found")
        self.kind = kind
        self.ident = ident


class NotPermitted(DomainError):
    """The actor may not make this change (for example: a care team they are not on)."""


class SelfGrantRefused(NotPermitted):
    """Somebody tried to give themself access (compliance is alerted)."""


class IdempotencyKeyReused(DomainError):
    """An Idempotency-Key sent again with a different request (IETF draft: 422)."""

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was already used for a different request; nothing was "
            "written: send a new key",
            field="Idempotency-Key",
        )


class ConflictError(DomainError):
    """Another change to the same stream won the race; reload and retry."""


class RequestInFlight(ConflictError):
    """A request with this Idempotency-Key is still being processed (IETF draft: 409)."""

    def __init__(self) -> None:
        super().__init__(
            "a request with this Idempotency-Key is still being processed; retry shortly"
        )


class DuplicateMRN(ConflictError):
    """A patient with this MRN is already registered."""

    def __init__(self, existing_id: UUID) -> None:
        super().__init__(f"a patient with this MRN is already registered as {existing_id}")
        self.existing_id = existing_id


class PatientErasedError(DomainError):
    """The patient's data key was destroyed: their clinical data can no longer be read."""

    def __init__(self, patient_id: UUID) -> None:
        super().__init__(f"patient {patient_id} has been erased")
        self.patient_id = patient_id

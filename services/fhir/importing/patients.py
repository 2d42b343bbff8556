"""Patient → ``RegisterPatient``: matched by medical record number.

The MRN is the identifier typed ``MR`` (v2-0203); one of the hospital's system
(``MRN_SYSTEMS``) is preferred when several are. A UUID MRN (Synthea's) is longer than the
backbone's MRNs may be: it is kept as its 32 hex digits. The same MRN always names the same
backbone patient, so a patient registered elsewhere is matched, not registered twice.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from events.commands.patients import RegisterPatient
from services.fhir.importing.fields import Unmappable, codings
from services.fhir.importing.reader import Resource

MR_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
# Systems whose MR identifier is preferred (Synthea's hospital).
MRN_SYSTEMS = ("http://hospital.smarthealthit.org",)
SEXES = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}


def mrn_of(resource: Resource) -> str:
    """The patient's MRN: the identifier typed MR (the hospital's system first)."""
    found: list[tuple[int, str]] = []
    for ident in resource.get("identifier") or []:
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            continue
        typed = any(c.get("code") == "MR" for c in codings(ident.get("type")))
        if typed:
            preferred = ident.get("system") in MRN_SYSTEMS
            found.append((0 if preferred else 1, ident["value"].strip()))
    found = [item for item in found if item[1]]
    if not found:
        raise Unmappable("Patient has no medical record number (identifier typed MR)")
    return _fitted(min(found)[1])


def _fitted(mrn: str) -> str:
    """MRNs are at most 32 characters here; a UUID MRN (Synthea's) is kept as its 32 hex
    digits, the same MRN every time."""
    if len(mrn) <= 32:
        return mrn
    try:
        return UUID(mrn).hex
    except ValueError:
        raise Unmappable("Patient's medical record number is longer than 32 characters") from None


def _name(resource: Resource) -> tuple[str, tuple[str, ...]]:
    names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    official = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if official is None or not isinstance(official.get("family"), str):
        raise Unmappable("Patient has no family name")
    given = tuple(str(g) for g in official.get("given") or [] if isinstance(g, str) and g)
    return official["family"], given


def register_command(resource: Resource) -> RegisterPatient:
    """The registration a Patient asks for."""
    family, given = _name(resource)
    birth = resource.get("birthDate")
    if not isinstance(birth, str):
        raise Unmappable("Patient has no birthDate")
    try:
        born = date.fromisoformat(birth)
    except ValueError:
        raise Unmappable(f"Patient.birthDate {birth!r} is not a full date") from None
    sex = SEXES.get(str(resource.get("gender", "unknown")), "unknown")
    return RegisterPatient(mrn_of(resource), family, given, born, sex)

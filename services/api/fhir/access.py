"""Who may read a patient's FHIR resources, and the audit of each read.

The same rules as the chart: a clinician (nurse, physician, pharmacist) on the survivor's
care team or with an active break-glass grant; every read of patient data recorded as
``chart.viewed`` (section ``fhir``) with its purpose, against the survivor."""

from __future__ import annotations

from uuid import UUID

from events.commands.access import RecordChartView
from services.api.container import Container
from services.api.deps import CLINICIANS, command_context, patient_access
from services.api.problems import Forbidden
from services.auth.service import Principal
from services.fhir.outcomes import FhirError

DEFAULT_PURPOSE = "treatment"


def require_clinician(user: Principal) -> None:
    if user.role not in CLINICIANS:
        raise FhirError(403, f"the {user.role} role may not read clinical resources")


def chart_access(container: Container, user: Principal, survivor: UUID) -> bool:
    """``patient_access`` as FHIR answers it: True through break-glass; a refusal is a 403
    OperationOutcome whose recorded denial names the patient."""
    try:
        return patient_access(container, user, survivor)
    except Forbidden as exc:
        raise FhirError(403, str(exc), patient_id=survivor) from exc


def open_patient(
    container: Container, user: Principal, patient_id: UUID, purpose: str = DEFAULT_PURPOSE
) -> tuple[UUID, tuple[UUID, ...]]:
    """Check the caller may read ``patient_id``'s record and record the read; answers
    (survivor, every record merged into it), the ids whose rows the read may show.

    403 (an OperationOutcome, and a recorded denial) when off the care team without
    break-glass."""
    require_clinician(user)
    survivor, merged = container.store.merge_group(patient_id)
    break_glass = chart_access(container, user, survivor)
    container.store.record_chart_view(
        command_context(user), RecordChartView(survivor, "fhir", purpose, break_glass)
    )
    return survivor, merged

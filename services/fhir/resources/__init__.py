"""Every resource type the FHIR endpoint serves, as kinds over the read tables, in the
order the CapabilityStatement and ``$everything`` list them."""

from __future__ import annotations

from services.fhir.kinds import Kind
from services.fhir.resources.allergy import ALLERGY
from services.fhir.resources.encounter import ENCOUNTER
from services.fhir.resources.medications import MEDICATION_ADMINISTRATION, MEDICATION_REQUEST
from services.fhir.resources.observations import OBSERVATION
from services.fhir.resources.orders import DIAGNOSTIC_REPORT, SERVICE_REQUEST, SPECIMEN
from services.fhir.resources.patient import PATIENT

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        PATIENT,
        ENCOUNTER,
        ALLERGY,
        SERVICE_REQUEST,
        SPECIMEN,
        OBSERVATION,
        DIAGNOSTIC_REPORT,
        MEDICATION_REQUEST,
        MEDICATION_ADMINISTRATION,
    )
}

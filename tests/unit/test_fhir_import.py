"""FHIR import without servers: reading Bundles and NDJSON, mapping each resource type of
the Synthea bundle to its typed command, the RxNorm mapping, and a whole import into an
in-memory store, imported twice."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from events.application import ClinicalStore
from events.commands.observations import RecordObservation, RecordVitals
from events.domain.envelope import Actor
from events.domain.rules.medications import NOT_SCREENED, drug
from events.domain.rules.rxnorm import clinical_drug, clinical_drugs
from services.fhir.importing.allergies import allergy
from services.fhir.importing.encounters import visit
from services.fhir.importing.fields import Unmappable
from services.fhir.importing.medications import prescription
from services.fhir.importing.observations import lab_analyte, vital_command
from services.fhir.importing.patients import register_command
from services.fhir.importing.reader import NotFhir, read_bytes, read_text
from services.fhir.importing.report import Status
from services.fhir.importing.run import Importer
from services.fhir.importing.steps import Refused
from tests.unit.conftest import account, ctx

BUNDLE = Path(__file__).resolve().parents[1] / "data" / "fhir" / "cfhir.json"
PATIENT = UUID("00000000-0000-4000-8000-0000000000aa")


@cache
def synthea() -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(BUNDLE.read_text())
    return bundle


def first(kind: str, code: str | None = None) -> dict[str, Any]:
    """The first resource of a type in the Synthea bundle (with this LOINC or RxNorm code)."""
    for entry in synthea()["entry"]:
        resource: dict[str, Any] = entry["resource"]
        if resource["resourceType"] != kind:
            continue
        concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
        if code is None or any(c["code"] == code for c in concept.get("coding", [])):
            return resource
    raise LookupError(kind, code)


# --- reading -------------------------------------------------------------------------------


def test_a_transaction_bundle_is_read_entry_by_entry() -> None:
    source = read_bytes(BUNDLE.read_bytes())
    assert source.bundle_type == "transaction"
    assert len(source.entries) == len(synthea()["entry"]) == 556
    patient = source.entries[0]
    assert patient.resource_type == "Patient"
    assert patient.full_url is not None and patient.full_url in patient.names()


def test_ndjson_is_one_resource_a_line() -> None:
    lines = [json.dumps(first("Patient")), "", json.dumps(first("Encounter"))]
    source = read_text("\n".join(lines))
    assert [e.resource_type for e in source.entries] == ["Patient", "Encounter"]
    assert source.bundle_type is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("MSH|^~\\&|LAB", "neither JSON nor NDJSON"),
        ('{"resourceType": "Patient"}\nnot json', "line 2: not JSON"),
        ('{"hello": "world"}', "needs a resourceType"),
        ('{"resourceType": "Bundle", "type": "searchset"}', "Bundle.type 'searchset'"),
        ('{"resourceType": "Bundle", "type": "batch", "entry": [{}]}', "entry[0]"),
        ("[1, 2]", "expected a FHIR resource"),
    ],
)
def test_what_is_not_fhir_is_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(NotFhir, match=None) as refused:
        read_text(text)
    assert says in str(refused.value)


# --- RxNorm ---------------------------------------------------------------------------------


def test_ibuprofen_200_mg_oral_tablet_is_screened_as_ibuprofen() -> None:
    found = clinical_drug("310965")
    assert found is not None
    assert (found.ingredient, found.ingredient_name, found.strength) == ("5640", "ibuprofen", 200)
    assert found.source


def test_an_unlisted_rxnorm_code_has_no_ingredient() -> None:
    assert clinical_drug("999999999") is None


def test_every_mapped_ingredient_is_one_the_screening_knows() -> None:
    unknown = [d.code for d in clinical_drugs().values() if drug(d.ingredient) is None]
    assert unknown == []


def test_every_drug_of_the_synthea_bundle_is_mapped() -> None:
    codes = {
        c["code"]
        for e in synthea()["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
        for c in e["resource"]["medicationCodeableConcept"]["coding"]
    }
    assert codes and all(clinical_drug(code) is not None for code in codes)


# --- mapping each resource type ------------------------------------------------------------


def test_a_synthea_patient_registers_under_its_mrn() -> None:
    command = register_command(first("Patient"))
    # The MR identifier of the hospital's system, a UUID, kept as its 32 hex digits.
    assert command.mrn == "41166989975d4d17b9de17f94cb3eec1"
    assert command.family_name.startswith("Stiedemann")
    assert command.sex == "male"


def test_a_patient_without_an_mrn_is_not_mappable() -> None:
    resource = {**first("Patient"), "identifier": []}
    with pytest.raises(Unmappable, match="medical record number"):
        register_command(resource)


def test_a_finished_ambulatory_encounter_is_an_outpatient_visit_that_ended() -> None:
    found = visit(first("Encounter"))
    assert found.encounter_class == "outpatient"
    assert found.end is not None and found.start < found.end
    assert found.disposition == "home"


def test_a_blood_pressure_panel_is_systolic_and_diastolic() -> None:
    panel = first("Observation", "55284-4")
    command = vital_command(panel, PATIENT)
    assert isinstance(command, RecordVitals)
    parts = {
        c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in panel["component"]
    }
    assert (command.systolic_bp, command.diastolic_bp) == (parts["8480-6"], parts["8462-4"])


def test_weight_and_height_are_body_measurements_in_their_units() -> None:
    weight = vital_command(first("Observation", "29463-7"), PATIENT)
    height = vital_command(first("Observation", "8302-2"), PATIENT)
    assert isinstance(weight, RecordObservation) and isinstance(height, RecordObservation)
    assert (weight.kind, weight.unit, height.kind, height.unit) == (
        "body_weight",
        "kg",
        "body_height",
        "cm",
    )


def test_a_temperature_in_fahrenheit_is_stored_in_celsius() -> None:
    resource = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        "valueQuantity": {"value": 98.6, "code": "[degF]"},
    }
    command = vital_command(resource, PATIENT)
    assert isinstance(command, RecordVitals) and command.temperature_c == 37.0


@pytest.mark.parametrize(("code", "why"), [("39156-5", "BMI"), ("72514-3", "pain score")])
def test_bmi_and_pain_are_not_mappable_with_the_reason(code: str, why: str) -> None:
    with pytest.raises(Unmappable, match=why):
        vital_command(first("Observation", code), PATIENT)


def test_a_lab_observation_is_one_analyte_with_its_unit() -> None:
    glucose = first("Observation", "2339-0")
    analyte = lab_analyte(glucose)
    assert (analyte.code, analyte.unit) == ("2339-0", "mg/dL")
    assert analyte.value == glucose["valueQuantity"]["value"]


def test_a_lab_unit_the_backbone_refuses_makes_that_result_not_mappable() -> None:
    with pytest.raises(Unmappable, match="unit"):
        lab_analyte(first("Observation", "787-2"))  # MCV in fL


def test_a_stopped_simvastatin_request_is_prescribed_as_the_ingredient_then_stopped() -> None:
    wanted = prescription(first("MedicationRequest", "316672"), PATIENT)
    command = wanted.command
    assert (command.drug_code, command.drug_name) == ("36567", "simvastatin")
    assert (command.dose, command.dose_unit, command.route) == (10, "mg", "oral")
    assert command.frequency == "daily"
    assert wanted.ended_as == "stopped"


def test_an_unmapped_drug_keeps_its_code_and_the_strength_its_name_states() -> None:
    resource = {
        **first("MedicationRequest", "313782"),
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "308136",
                    "display": "amLODIPine 2.5 MG Oral Tablet",
                }
            ]
        },
    }
    command = prescription(resource, PATIENT).command
    assert (command.drug_code, command.dose, command.route) == ("308136", 2.5, "oral")


def test_an_allergy_is_recorded_and_a_refuted_one_is_not() -> None:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {
            "coding": [{"system": "http://snomed.info/sct", "code": "91936005"}],
            "text": "Allergy to penicillin",
        },
        "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "severe"}],
        "criticality": "high",
    }
    recorded = allergy(resource, PATIENT)
    assert (recorded.command.reaction, recorded.command.severity) == ("Hives", "severe")
    assert not recorded.inactive and not recorded.severity_assumed
    refuted = {**resource, "verificationStatus": {"coding": [{"code": "refuted"}]}}
    with pytest.raises(Unmappable, match="refuted"):
        allergy(refuted, PATIENT)


# --- a whole import ------------------------------------------------------------------------


def physician(store: ClinicalStore) -> Actor:
    return Actor(user_id=account(store, f"dr{uuid4().hex[:6]}", "physician"), role="physician")


def test_the_synthea_bundle_is_imported_and_a_second_import_stores_nothing(
    store: ClinicalStore,
) -> None:
    doctor = physician(store)
    source = read_bytes(BUNDLE.read_bytes())
    report = Importer(store, ctx(doctor), source, attending=doctor.user_id).run()
    counts = report.counts()
    assert len(report.lines) == 556
    assert counts["Patient"]["imported"] == 1
    assert counts["Encounter"]["imported"] == 28
    assert counts["MedicationRequest"]["imported"] == 10
    assert counts["DiagnosticReport"]["imported"] == 33
    # 374 Observations: survey, BMI, pain and the 10 results in fL or pg are not mappable.
    assert counts["Observation"] == {"imported": 328, "already imported": 0, "not mappable": 46}
    assert counts["Claim"]["not mappable"] == 38
    assert report.reasons()["Claim"] == {"Claim is not imported": 38}
    head = store.event_log.head()

    again = Importer(store, ctx(doctor), source, attending=doctor.user_id).run()
    assert again.totals() == {"imported": 0, "already imported": 400, "not mappable": 156}
    assert store.event_log.head() == head


def test_an_unmapped_drug_is_imported_not_screened_visibly(store: ClinicalStore) -> None:
    doctor = physician(store)
    patient = json.dumps({**first("Patient"), "id": "p1"})
    request = {
        **first("MedicationRequest", "316672"),
        "id": "m1",
        "subject": {"reference": "Patient/p1"},
        "encounter": None,
        "status": "active",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "308136",
                    "display": "amLODIPine 2.5 MG Oral Tablet",
                }
            ]
        },
    }
    source = read_text(patient + "\n" + json.dumps(request))
    report = Importer(store, ctx(doctor), source, attending=doctor.user_id).run()
    line = report.sorted_lines()[1]
    assert line.status is Status.IMPORTED
    assert any(n.startswith(NOT_SCREENED) and "308136" in n for n in line.notes)


def test_a_resource_the_caller_may_not_write_is_refused_and_counted(
    store: ClinicalStore,
) -> None:
    doctor = physician(store)

    def nurse_only(what: str) -> None:
        if what == "medication":
            raise Refused(403, "the nurse role may not write this (medication)")

    source = read_bytes(BUNDLE.read_bytes())
    report = Importer(store, ctx(doctor), source, attending=doctor.user_id, permit=nurse_only).run()
    refused = [line for line in report.sorted_lines() if line.resource_type == "MedicationRequest"]
    assert len(refused) == 10
    assert all(line.http_status == 403 and line.status is Status.NOT_MAPPABLE for line in refused)

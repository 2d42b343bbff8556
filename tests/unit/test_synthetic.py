"""The synthetic-patient generator: deterministic, within the reference data, accepted."""

from __future__ import annotations

from uuid import UUID

import pytest

from events.application import ClinicalStore
from events.commands.base import CommandResult
from events.commands.orders import CollectSpecimen
from events.domain.errors import DomainError
from events.domain.rules.reference import allergy_rules, analytes, drugs, vital_signs
from services.synthetic import (
    ALLERGENS,
    AMOXICILLIN,
    DRUGS,
    LABS,
    PENICILLIN,
    VITALS,
    Synthetic,
    http_body,
    indexed_vitals,
)
from tests.unit.conftest import LAB, NURSE, ctx

PATIENT = UUID("00000000-0000-4000-8000-00000000beef")


def draws(seed: int) -> list[object]:
    people = Synthetic(seed, mrn_prefix="T-")
    return [
        *(people.registration(i) for i in range(20)),
        *(people.vitals(PATIENT) for _ in range(20)),
        *(people.results(PATIENT, test) for test in LABS),
        *(people.allergy(PATIENT) for _ in range(10)),
        *(people.order(PATIENT, test) for test in LABS),
    ]


def test_the_same_seed_gives_the_same_patients_and_another_seed_others() -> None:
    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


def test_mrns_follow_the_prefix_and_the_index() -> None:
    people = Synthetic(1, mrn_prefix="DEMO-", first_number=1)
    assert [people.registration(i).mrn for i in range(2)] == ["DEMO-000001", "DEMO-000002"]


def test_every_vital_value_is_possible_and_diastolic_stays_below_systolic() -> None:
    signs = vital_signs()
    people = Synthetic(3)
    sets = [people.vitals(PATIENT) for _ in range(500)]
    sets += [indexed_vitals(PATIENT, i) for i in range(500)]
    for vitals in sets:
        values = {name: value for name, value in vitals.values().items() if value is not None}
        assert values.keys() == {v.name for v in VITALS}
        for name, value in values.items():
            assert signs[name].possible_low <= value <= signs[name].possible_high, (name, value)
        assert values["diastolic_bp"] < values["systolic_bp"]


def test_every_lab_test_is_a_known_analyte_in_its_unit_with_possible_values() -> None:
    known = analytes()
    people = Synthetic(4)
    for test in LABS:
        analyte = known[test.code]
        assert test.unit == analyte.unit
        assert test.reference_low < test.reference_high
        low, high = test.plausible
        assert low <= test.reference_low and test.reference_high <= high
        assert analyte.possible_min is None or analyte.possible_min <= low
        values = [people.result(test).value for _ in range(200)]
        assert all(low <= value <= high for value in values)


def test_every_drug_is_known_by_code_and_name_and_within_its_maximum_dose() -> None:
    known = drugs()
    for drug in DRUGS:
        info = known[drug.code]
        assert info.name == drug.name
        assert info.max_single_dose is not None
        assert info.max_single_dose.unit == drug.dose_unit
        assert drug.dose <= info.max_single_dose.value
    assert "penicillins" in known[AMOXICILLIN.code].classes


def test_every_allergen_is_a_known_drug_substance_or_class() -> None:
    substances = {info.substance for info in drugs().values()}
    aliases = allergy_rules().aliases
    for allergen in ALLERGENS:
        assert allergen.substance in substances or allergen.substance in aliases


def test_http_bodies_leave_out_path_ids_and_unset_fields() -> None:
    people = Synthetic(5, mrn_prefix="H-")
    registration = http_body(people.registration(0))
    assert registration["mrn"] == "H-000000"
    assert isinstance(registration["given_names"], list)
    assert isinstance(registration["birth_date"], str)
    results = http_body(people.results(PATIENT, LABS[0]))
    assert set(results) == {"results"} and results["results"][0]["code"] == LABS[0].code
    prescription = http_body(AMOXICILLIN.prescribe(PATIENT))
    assert "patient_id" not in prescription and "override_reason" not in prescription
    with pytest.raises(TypeError):
        http_body({"not": "a command"})


def test_the_generated_commands_are_accepted_by_the_store(store: ClinicalStore) -> None:
    people = Synthetic(6, mrn_prefix="U-")
    results: list[CommandResult] = []
    for i in range(12):
        registration = people.registration(i)
        patient = store.register_patient(ctx(), registration).id
        results.append(
            store.update_demographics(ctx(NURSE), people.renamed(patient, registration.family_name))
        )
        results.append(store.record_allergy(ctx(NURSE), people.allergy(patient)))
        results.append(store.record_vitals(ctx(NURSE), people.vitals(patient)))
        results.append(store.record_vitals(ctx(NURSE), indexed_vitals(patient, i)))
        for test in LABS:
            order = store.place_order(ctx(), people.order(patient, test)).id
            store.collect_specimen(ctx(NURSE), CollectSpecimen(order))
            results.append(store.receive_results(ctx(LAB), people.results(order, test)))
        for drug in DRUGS:
            if drug is not AMOXICILLIN:
                results.append(store.prescribe(ctx(), drug.prescribe(patient)))
    assert len(results) == 12 * (4 + len(LABS) + len(DRUGS) - 1)


def test_amoxicillin_for_the_penicillin_allergic_needs_an_override_reason(
    store: ClinicalStore,
) -> None:
    people = Synthetic(8, mrn_prefix="A-")
    patient = store.register_patient(ctx(), people.registration(0)).id
    store.record_allergy(ctx(NURSE), people.allergy(patient, PENICILLIN))
    with pytest.raises(DomainError):
        store.prescribe(ctx(), AMOXICILLIN.prescribe(patient))
    accepted = store.prescribe(ctx(), AMOXICILLIN.prescribe(patient, "tolerated it before"))
    assert accepted.detail["alerts_overridden"]

"""Narratives for electrolyte doses, cited interactions, "not screened" notes and allergies."""

from __future__ import annotations

import pytest

from events.domain.rules.interactions import interaction_alerts, interaction_rules
from events.domain.rules.medications import (
    NOT_SCREENED,
    allergy_alerts,
    dose_alerts,
    screening_gaps,
)
from events.domain.rules.reference import drugs

POTASSIUM_CHLORIDE = "8591"
WARFARIN = ("11289", "warfarin")


@pytest.mark.parametrize("unit", ["mg", "g", "mcg", "units", "mL", "meq", "mmol"])
def test_every_payload_dose_unit_is_a_known_unit(unit: str) -> None:
    # given each unit the payload schema accepts / when checked / then no UnknownUnitError
    dose_alerts("161", 1.0, unit)


def test_potassium_chloride_20_meq_can_be_prescribed_and_mmol_converts_by_valence() -> None:
    # given potassium chloride, at most 20 mEq per single oral dose
    assert dose_alerts(POTASSIUM_CHLORIDE, 20.0, "meq") == []
    assert dose_alerts(POTASSIUM_CHLORIDE, 20.0, "mmol") == []
    # when 40 mEq or 40 mmol is ordered / then it is over the maximum
    assert dose_alerts(POTASSIUM_CHLORIDE, 40.0, "mEq") != []
    assert dose_alerts(POTASSIUM_CHLORIDE, 40.0, "mmol") != []
    # and meq cannot be compared with a maximum in mg
    assert "cannot be checked" in dose_alerts("161", 5.0, "meq")[0]


@pytest.mark.parametrize(
    ("other", "word"),
    [
        (("10180", "sulfamethoxazole / trimethoprim"), "INR"),
        (("2551", "ciprofloxacin"), "INR"),
        (("703", "amiodarone"), "INR"),
        (("4450", "fluconazole"), "INR"),
        (("36437", "sertraline"), "bleeding"),
    ],
)
def test_warfarin_with_inr_raising_drugs_and_ssris_alerts(
    other: tuple[str, str], word: str
) -> None:
    # given a patient on warfarin / when the other drug is ordered / then an alert
    alerts = interaction_alerts(other[0], other[1], [WARFARIN])
    assert len(alerts) == 1
    assert word in alerts[0]
    assert "management:" in alerts[0]


def test_ssri_with_nsaid_statin_with_clarithromycin_sildenafil_with_nitrate_alert() -> None:
    assert "bleeding" in interaction_alerts("4493", "fluoxetine", [("5640", "ibuprofen")])[0]
    simvastatin = interaction_alerts("21212", "clarithromycin", [("36567", "simvastatin")])
    assert simvastatin[0].startswith("interaction (contraindicated)")
    assert "Phansalkar" in simvastatin[0]
    nitrate = interaction_alerts("136411", "Viagra", [("4917", "nitroglycerin")])
    assert "hypotension" in nitrate[0]


def test_every_interaction_names_its_source_and_management() -> None:
    for rule in interaction_rules():
        assert rule.source.strip()
        assert rule.management.strip()


def test_an_unknown_drug_and_an_unmapped_allergy_are_marked_not_screened() -> None:
    # given an unknown drug code and an allergy the reference data cannot map
    notes = screening_gaps("12345", "Novel-mab", [("latex", None), ("penicillin", None)])
    # then each gets an explicit note, the known allergy none
    assert notes == [
        f"{NOT_SCREENED}drug 12345 (Novel-mab) is not in the reference data",
        f"{NOT_SCREENED}allergy to latex is not in the reference data",
    ]
    assert screening_gaps("723", "amoxicillin", [("Amoxil", "723")]) == []


def test_cross_reactivity_reads_both_ways() -> None:
    # given a cephalexin allergy / when amoxicillin is ordered / then the shared side chain alerts
    alerts = allergy_alerts("723", "amoxicillin", [("cephalexin", None)])
    assert alerts == [
        "allergy to cephalexin: amoxicillin is in the cross-reacting class "
        "r1-aminobenzyl-side-chain"
    ]


@pytest.mark.parametrize("text", ["Penicillin G", "penicillin G benzathine", "Penicillin V"])
def test_penicillin_g_and_v_allergies_flag_amoxicillin(text: str) -> None:
    assert allergy_alerts("723", "amoxicillin", [(text, None)]) != []


def test_brand_names_and_salt_forms_are_the_same_substance() -> None:
    assert allergy_alerts("2231", "cephalexin", [("Keflex", None)]) == [
        "allergy to Keflex: same substance as cephalexin"
    ]
    assert allergy_alerts("723", "amoxicillin", [("amoxicillin trihydrate", None)]) != []


def test_a_penicillin_allergy_does_not_flag_every_cephalosporin() -> None:
    assert allergy_alerts("2193", "ceftriaxone", [("penicillin", None)]) == []
    assert allergy_alerts("2193", "ceftriaxone", [("penicillin V", "7984")]) == []


def test_potassium_chloride_has_the_rxnorm_code_and_a_sourced_maximum() -> None:
    info = drugs()[POTASSIUM_CHLORIDE]
    assert info.max_single_dose is not None
    assert info.max_single_dose.unit == "meq"
    assert info.note is not None
    assert "FDA" in info.note

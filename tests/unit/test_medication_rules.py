"""The clinical rules as narratives: medication dose, allergy and interaction alerts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.domain.errors import ImpossibleValueError, UnknownUnitError
from events.domain.rules.medications import allergy_alerts, dose_alerts, drug, drug_by_name

AMOXICILLIN = "723"
CEPHALEXIN = "2231"
CEFTRIAXONE = "2193"
IBUPROFEN = "5640"
NAPROXEN = "7258"
ACETAMINOPHEN = "161"
MORPHINE = "7052"
SULFAMETHOXAZOLE = "10180"
HEPARIN = "5224"
WARFARIN = "11289"


# --- medications: doses ----------------------------------------------------------------------


def test_a_dose_above_the_maximum_single_dose_is_an_alert() -> None:
    # given amoxicillin, whose adult maximum single dose is 1000 mg
    # when 2000 mg is ordered
    alerts = dose_alerts(AMOXICILLIN, 2000.0, "mg")
    # then the alert says by how much it is over
    assert alerts == ["dose 2000 mg exceeds the maximum single dose of 1000 mg for amoxicillin"]


def test_a_dose_equal_to_the_maximum_is_no_alert() -> None:
    assert dose_alerts(AMOXICILLIN, 1000.0, "mg") == []
    assert dose_alerts(IBUPROFEN, 400.0, "MG") == []


def test_a_dose_in_grams_is_compared_in_milligrams() -> None:
    assert dose_alerts(AMOXICILLIN, 1.0, "g") == []
    assert dose_alerts(AMOXICILLIN, 1.5, "g") != []
    assert dose_alerts(ACETAMINOPHEN, 1_000_000.0, "mcg") == []


def test_heparin_is_dosed_in_units() -> None:
    assert dose_alerts(HEPARIN, 5000.0, "units") == []
    assert dose_alerts(HEPARIN, 50000.0, "[IU]") != []


def test_a_dose_unit_that_cannot_be_compared_with_the_maximum_is_an_alert_not_silence() -> None:
    # given warfarin ordered in millilitres
    alerts = dose_alerts(WARFARIN, 5.0, "mL")
    # then an alert says it could not be checked
    assert len(alerts) == 1
    assert "cannot be checked" in alerts[0]


def test_an_unknown_drug_gets_no_dose_alert_but_an_unknown_unit_is_refused() -> None:
    assert dose_alerts("999999999", 100000.0, "mg") == []
    with pytest.raises(UnknownUnitError) as refused:
        dose_alerts(AMOXICILLIN, 500.0, "tablets")
    assert refused.value.field == "dose_unit"


@pytest.mark.parametrize("dose", [0.0, -5.0, math.nan])
def test_a_dose_that_is_not_positive_is_impossible(dose: float) -> None:
    with pytest.raises(ImpossibleValueError):
        dose_alerts(AMOXICILLIN, dose, "mg")


@given(dose=st.floats(min_value=1e-3, max_value=800.0))
def test_any_ibuprofen_dose_up_to_800_mg_is_no_alert(dose: float) -> None:
    assert dose_alerts(IBUPROFEN, dose, "mg") == []


# --- medications: allergies ------------------------------------------------------------------


def test_the_drug_lookup_knows_ingredients_by_rxcui_and_by_product_name() -> None:
    found = drug(AMOXICILLIN)
    assert found is not None
    assert found.substance == "amoxicillin"
    assert "penicillins" in found.classes
    assert drug("0") is None
    assert drug_by_name("Amoxicillin 500 MG Oral Capsule") == found
    penicillin_v = drug_by_name("Penicillin V Potassium")
    assert penicillin_v is not None
    assert penicillin_v.code == "7984"
    assert drug_by_name("penicillin") is None


def test_a_penicillin_allergy_blocks_amoxicillin() -> None:
    # given a patient allergic to penicillin (free text, no code)
    allergies = [("Penicillin", None)]
    # when amoxicillin is ordered
    alerts = allergy_alerts(AMOXICILLIN, "amoxicillin", allergies)
    # then one alert names the allergy and the class
    assert alerts == [
        "allergy to Penicillin: amoxicillin is in the cross-reacting class penicillins"
    ]


def test_an_unspecified_penicillin_allergy_flags_cephalexin_by_side_chain_not_ceftriaxone() -> None:
    # given an allergy recorded only as "penicillin"
    # when cephalexin (aminopenicillin R1 side chain) or ceftriaxone is ordered
    alerts = allergy_alerts(CEPHALEXIN, "cephalexin", [("penicillin", None)])
    # then only the shared side chain alerts
    assert alerts == [
        "allergy to penicillin: cephalexin is in the cross-reacting class r1-aminobenzyl-side-chain"
    ]
    assert allergy_alerts(CEFTRIAXONE, "ceftriaxone", [("penicillin", None)]) == []


def test_an_amoxicillin_allergy_by_code_flags_cephalexin_and_amoxicillin_not_ceftriaxone() -> None:
    # given an allergy coded with the amoxicillin RXCUI
    allergies = [("Amoxil", AMOXICILLIN)]
    # then cephalexin shares the R1 side chain, ceftriaxone does not, amoxicillin is itself
    assert allergy_alerts(CEPHALEXIN, "cephalexin", allergies) == [
        "allergy to Amoxil: cephalexin is in the cross-reacting class r1-aminobenzyl-side-chain"
    ]
    assert allergy_alerts(CEFTRIAXONE, "ceftriaxone", allergies) == []
    assert allergy_alerts(AMOXICILLIN, "amoxicillin", allergies) == [
        "allergy to Amoxil: same substance as amoxicillin"
    ]


def test_an_allergy_named_like_the_drug_is_the_same_substance_whatever_the_case() -> None:
    assert allergy_alerts(MORPHINE, "Morphine", [("MORPHINE", None)]) == [
        "allergy to MORPHINE: same substance as morphine"
    ]


def test_an_allergy_with_the_drug_code_matches_even_for_a_drug_we_do_not_know() -> None:
    # given a product code the reference data lacks and an allergy coded with it
    alerts = allergy_alerts("1234567", "Novel-mab", [("novel antibody", "1234567")])
    # then it is the same substance
    assert alerts == ["allergy to novel antibody: same substance as Novel-mab"]


def test_ibuprofen_is_an_alert_for_a_patient_with_an_aspirin_allergy() -> None:
    # given an aspirin allergy (aspirin-exacerbated respiratory disease)
    # when ibuprofen or naproxen is ordered
    ibuprofen = allergy_alerts(IBUPROFEN, "ibuprofen", [("aspirin", None)])
    naproxen = allergy_alerts(NAPROXEN, "naproxen", [("Aspirin", "1191")])
    # then both cross-react as NSAIDs, while acetaminophen does not
    assert ibuprofen == ["allergy to aspirin: ibuprofen is in the cross-reacting class nsaids"]
    assert naproxen == ["allergy to Aspirin: naproxen is in the cross-reacting class nsaids"]
    assert allergy_alerts(ACETAMINOPHEN, "acetaminophen", [("aspirin", None)]) == []


def test_a_sulfa_allergy_blocks_sulfamethoxazole_and_codeine_allergy_blocks_morphine() -> None:
    assert allergy_alerts(SULFAMETHOXAZOLE, "sulfamethoxazole", [("Sulfa", None)]) != []
    assert allergy_alerts(MORPHINE, "morphine", [("codeine", None)]) == [
        "allergy to codeine: morphine is in the cross-reacting class phenanthrene-opioids"
    ]


def test_a_product_name_is_enough_to_find_the_class_of_an_uncoded_drug() -> None:
    # given a clinical-drug code the table lacks, named as a product
    alerts = allergy_alerts("308182", "Amoxicillin 250 MG Oral Capsule", [("PCN", None)])
    # then the penicillin allergy still alerts
    assert alerts == ["allergy to PCN: amoxicillin is in the cross-reacting class penicillins"]


def test_unrelated_allergies_raise_no_alert_and_duplicates_are_reported_once() -> None:
    # given allergies unrelated to the drug, and one repeated
    allergies = [("latex", None), ("sulfa", None), ("penicillin", None), ("penicillin", None)]
    # when warfarin is ordered / then nothing; when amoxicillin is, one alert
    assert allergy_alerts(WARFARIN, "warfarin", allergies) == []
    assert len(allergy_alerts(AMOXICILLIN, "amoxicillin", allergies)) == 1


def test_a_shared_class_without_a_cross_reactivity_rule_is_no_alert() -> None:
    # given a ciprofloxacin allergy; citalopram also prolongs the QT interval
    # then that shared class is no allergy
    assert allergy_alerts("2556", "citalopram", [("ciprofloxacin", "2551")]) == []


def test_warfarin_with_an_nsaid_and_ace_inhibitor_with_spironolactone_interact() -> None:
    from events.domain.rules.interactions import duplicate_therapy_alerts, interaction_alerts

    assert interaction_alerts("5640", "ibuprofen", [("11289", "warfarin")])[0].startswith(
        "interaction (major): ibuprofen with warfarin"
    )
    assert interaction_alerts("9997", "spironolactone", [("29046", "lisinopril")])
    assert "serotonin" in interaction_alerts("8123", "phenelzine", [("36437", "sertraline")])[0]
    assert interaction_alerts("703", "amiodarone", [("2556", "citalopram")])
    assert interaction_alerts("6809", "metformin", [("11289", "warfarin")]) == []
    assert duplicate_therapy_alerts("7258", "naproxen", [("5640", "ibuprofen")])
    assert duplicate_therapy_alerts("6809", "metformin", [("29046", "lisinopril")]) == []

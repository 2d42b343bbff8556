"""Narratives for the ONC high-priority drug-drug interactions (Phansalkar et al., JAMIA 2012).

Each of the 15 pairs raises its alert with its severity, effect and management, whichever of
the two drugs is ordered while the other is active, and every entry names its source.
"""

from __future__ import annotations

import pytest

from events.domain.rules.interactions import interaction_alerts, interaction_rules
from events.domain.rules.reference import drugs

PHANSALKAR = "Phansalkar S, Desai AA, Bell D, et al. High-priority drug-drug interactions"

# The 15 pairs of the list, as named by the entries' onc_pair.
ONC_PAIRS = {
    "Amphetamine and derivatives - MAO inhibitors",
    "Atazanavir - proton pump inhibitors",
    "Febuxostat - azathioprine/mercaptopurine",
    "SSRIs - MAO inhibitors",
    "Irinotecan - strong CYP3A4 inhibitors",
    "Narcotic analgesics - MAO inhibitors",
    "Tricyclic antidepressants - MAO inhibitors",
    "QT-prolonging agents - QT-prolonging agents",
    "Ramelteon - strong CYP1A2 inhibitors",
    "Strong CYP3A4 inducers - protease inhibitors",
    "HMG-CoA reductase inhibitors - CYP3A4 and protease inhibitors",
    "CYP3A4 and protease inhibitors - ergot alkaloids",
    "Tizanidine - CYP1A2 inhibitors",
    "Tranylcypromine - procarbazine",
    "Triptans - MAO inhibitors",
}

# (ONC pair, drug, other drug, severity, words of the effect, words of the management)
CASES = [
    (
        "Amphetamine and derivatives - MAO inhibitors",
        ("3288", "dextroamphetamine"),
        ("8123", "phenelzine"),
        "contraindicated",
        "hypertensive crisis",
        "within 14 days",
    ),
    (
        "Atazanavir - proton pump inhibitors",
        ("343047", "atazanavir"),
        ("7646", "omeprazole"),
        "contraindicated",
        "lower atazanavir levels",
        "ritonavir-boosted",
    ),
    (
        "Febuxostat - azathioprine/mercaptopurine",
        ("73689", "febuxostat"),
        ("1256", "azathioprine"),
        "contraindicated",
        "bone-marrow suppression",
        "Do not combine",
    ),
    (
        "SSRIs - MAO inhibitors",
        ("36437", "sertraline"),
        ("10734", "tranylcypromine"),
        "contraindicated",
        "serotonin syndrome",
        "14 days",
    ),
    (
        "Irinotecan - strong CYP3A4 inhibitors",
        ("51499", "irinotecan"),
        ("6135", "ketoconazole"),
        "contraindicated",
        "neutropenia",
        "at least 1 week",
    ),
    (
        "Narcotic analgesics - MAO inhibitors",
        ("6754", "meperidine"),
        ("8123", "phenelzine"),
        "contraindicated",
        "serotonin syndrome",
        "14 days",
    ),
    (
        "Tricyclic antidepressants - MAO inhibitors",
        ("704", "amitriptyline"),
        ("10734", "tranylcypromine"),
        "contraindicated",
        "hypertensive crisis",
        "14 days",
    ),
    (
        "QT-prolonging agents - QT-prolonging agents",
        ("6813", "methadone"),
        ("703", "amiodarone"),
        "major",
        "torsades de pointes",
        "ECG",
    ),
    (
        "Ramelteon - strong CYP1A2 inhibitors",
        ("596205", "ramelteon"),
        ("42355", "fluvoxamine"),
        "contraindicated",
        "sedation",
        "fluvoxamine",
    ),
    (
        "Strong CYP3A4 inducers - protease inhibitors",
        ("9384", "rifampin"),
        ("343047", "atazanavir"),
        "contraindicated",
        "virologic failure",
        "HIV specialist",
    ),
    (
        "HMG-CoA reductase inhibitors - CYP3A4 and protease inhibitors",
        ("6472", "lovastatin"),
        ("28031", "itraconazole"),
        "contraindicated",
        "rhabdomyolysis",
        "Do not combine",
    ),
    (
        "CYP3A4 and protease inhibitors - ergot alkaloids",
        ("4025", "ergotamine"),
        ("21212", "clarithromycin"),
        "contraindicated",
        "ergotism",
        "not an ergot",
    ),
    (
        "Tizanidine - CYP1A2 inhibitors",
        ("57258", "tizanidine"),
        ("2551", "ciprofloxacin"),
        "contraindicated",
        "hypotension",
        "ciprofloxacin",
    ),
    (
        "Tranylcypromine - procarbazine",
        ("10734", "tranylcypromine"),
        ("8702", "procarbazine"),
        "contraindicated",
        "hypertensive crisis",
        "Do not combine",
    ),
    (
        "Triptans - MAO inhibitors",
        ("37418", "sumatriptan"),
        ("6011", "isocarboxazid"),
        "contraindicated",
        "serotonin syndrome",
        "2 weeks",
    ),
]

# More members of the classes, each a drug pair the ONC mapping or the label names.
MORE_MEMBERS = [
    (("17128", "lansoprazole"), ("343047", "atazanavir"), "contraindicated"),
    (("114979", "rabeprazole"), ("343047", "atazanavir"), "contraindicated"),
    (("103", "mercaptopurine"), ("73689", "febuxostat"), "contraindicated"),
    (("51499", "irinotecan"), ("85762", "ritonavir"), "contraindicated"),
    (("10689", "tramadol"), ("9639", "selegiline"), "contraindicated"),
    (("4337", "fentanyl"), ("8123", "phenelzine"), "contraindicated"),
    (("6813", "methadone"), ("8123", "phenelzine"), "contraindicated"),
    (("7531", "nortriptyline"), ("8702", "procarbazine"), "contraindicated"),
    (("3288", "dextroamphetamine"), ("9639", "selegiline"), "contraindicated"),
    (("42355", "fluvoxamine"), ("8123", "phenelzine"), "contraindicated"),
    (("596205", "ramelteon"), ("2551", "ciprofloxacin"), "contraindicated"),
    (("596205", "ramelteon"), ("703", "amiodarone"), "major"),
    (("57258", "tizanidine"), ("42355", "fluvoxamine"), "contraindicated"),
    (("57258", "tizanidine"), ("703", "amiodarone"), "major"),
    (("2002", "carbamazepine"), ("85762", "ritonavir"), "contraindicated"),
    (("36567", "simvastatin"), ("343047", "atazanavir"), "contraindicated"),
    (("36567", "simvastatin"), ("85762", "ritonavir"), "contraindicated"),
    (("4025", "ergotamine"), ("343047", "atazanavir"), "contraindicated"),
    (("26225", "ondansetron"), ("2556", "citalopram"), "major"),
]


def _rule(onc_pair: str) -> list[str]:
    return [rule.source for rule in interaction_rules() if rule.onc_pair == onc_pair]


def test_the_whole_onc_list_is_in_the_reference_data() -> None:
    # given the interaction rules / when their ONC pairs are collected / then all 15 are there
    named = {rule.onc_pair for rule in interaction_rules() if rule.onc_pair is not None}
    assert named == ONC_PAIRS
    # and each ONC entry cites the paper
    for pair in ONC_PAIRS:
        assert all(PHANSALKAR in source for source in _rule(pair))


@pytest.mark.parametrize(
    ("onc_pair", "drug", "other", "severity", "effect", "management"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_each_onc_pair_alerts_in_both_orders(
    onc_pair: str,
    drug: tuple[str, str],
    other: tuple[str, str],
    severity: str,
    effect: str,
    management: str,
) -> None:
    for new, active in ((drug, other), (other, drug)):
        # given a patient on one drug of the pair / when the other is ordered
        alerts = interaction_alerts(new[0], new[1], [active])
        # then exactly one alert names the severity, effect, management and its source
        assert len(alerts) == 1
        alert = alerts[0]
        assert alert.startswith(f"interaction ({severity}): ")
        assert effect in alert
        assert "management: " in alert
        assert management in alert.split("management: ", 1)[1]
        # and the rule that fired is the ONC entry, its source shown with the alert
        assert any(f"[source: {source}]" in alert for source in _rule(onc_pair))


@pytest.mark.parametrize(("drug", "other", "severity"), MORE_MEMBERS)
def test_other_class_members_alert_too(
    drug: tuple[str, str], other: tuple[str, str], severity: str
) -> None:
    for new, active in ((drug, other), (other, drug)):
        alerts = interaction_alerts(new[0], new[1], [active])
        assert len(alerts) == 1
        assert alerts[0].startswith(f"interaction ({severity}): ")


def test_brand_names_find_the_onc_drugs() -> None:
    # given brand names only / when ordered / then the interaction is still found
    alerts = interaction_alerts("", "Zanaflex 4 MG Oral Tablet", [("", "Cipro")])
    assert alerts and alerts[0].startswith("interaction (contraindicated)")
    assert interaction_alerts("", "Reyataz", [("", "Prilosec 20 mg")]) != []


def test_triptans_do_not_alert_with_the_mao_b_inhibitor_selegiline() -> None:
    # the ONC mapping pairs triptans with phenelzine, tranylcypromine and isocarboxazid only
    assert interaction_alerts("37418", "sumatriptan", [("9639", "selegiline")]) == []


def test_every_interaction_entry_names_its_source_severity_and_management() -> None:
    for rule in interaction_rules():
        assert rule.source.strip()
        assert rule.management.strip()
        assert rule.severity in {"contraindicated", "major"}


def test_every_class_or_substance_of_an_interaction_is_in_the_drug_data() -> None:
    # given the drugs / when every term the rules name is collected / then none is a typo
    known = set().union(*(info.classes | {info.substance} for info in drugs().values()))
    for rule in interaction_rules():
        assert {rule.a, rule.b} <= known, rule


def test_sildenafil_with_nitrates_is_not_claimed_for_the_onc_list() -> None:
    # the ONC panel considered nitrates-PDE5 inhibitors and did not accept it (Table 3)
    rule = next(rule for rule in interaction_rules() if rule.a == "pde5-inhibitors")
    assert rule.onc_pair is None
    assert "Viagra" in rule.source
    assert "did not accept" in rule.source

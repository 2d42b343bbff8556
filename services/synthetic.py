"""Synthetic patients and clinical values: the one source of made-up data.

``backbone demo``, the integration workload and the bench all draw their people, vital signs,
lab tests, drugs and allergies from here, so the copied lists exist once. Nothing here does
I/O: a ``Synthetic`` is a seeded ``random.Random`` plus an MRN scheme, and it hands out the
typed inputs of ``events.commands`` that the store's commands take. ``http_body`` turns the
same inputs into the JSON bodies of the API, for callers that load data like a client does.

Every code and range below must be known to the reference data of
``events/domain/reference``: the drugs by RxNorm code (the medication rules depend on
them: amoxicillin for a penicillin-allergic patient asks for an override reason), the lab
tests by LOINC code, the vital ranges inside the possible ranges. ``tests/unit/test_synthetic``
checks that.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from events.commands.medications import Prescribe
from events.commands.observations import RecordVitals
from events.commands.orders import AnalyteInput, PlaceOrder, ReceiveResults
from events.commands.patients import RecordAllergy, RegisterPatient, UpdateDemographics

__all__ = [
    "ALLERGENS",
    "AMOXICILLIN",
    "ATORVASTATIN",
    "DEFAULT_SEED",
    "DRUGS",
    "FAMILY_NAMES",
    "GIVEN_NAMES",
    "GLUCOSE",
    "HEMOGLOBIN",
    "LABS",
    "LISINOPRIL",
    "METFORMIN",
    "PENICILLIN",
    "POTASSIUM",
    "PRIORITIES",
    "SEXES",
    "SODIUM",
    "VITALS",
    "Allergen",
    "Drug",
    "LabTest",
    "Synthetic",
    "VitalRange",
    "http_body",
    "indexed_vitals",
]

DEFAULT_SEED = 2026

FAMILY_NAMES: tuple[str, ...] = (
    "Okafor",
    "Nguyen",
    "Schmidt",
    "Garcia",
    "Haddad",
    "Kowalski",
    "Mensah",
    "Tanaka",
    "Silva",
    "Novak",
    "Okonkwo",
    "Lindqvist",
    "Moreau",
    "Byrne",
)
GIVEN_NAMES: tuple[str, ...] = (
    "Ada",
    "Ben",
    "Chloe",
    "Dmitri",
    "Esi",
    "Farah",
    "Goran",
    "Hana",
    "Ivo",
    "Jun",
    "Kofi",
    "Lena",
)
SEXES: tuple[str, ...] = ("female", "male", "other", "unknown")
_SEX_WEIGHTS = (48, 48, 2, 2)
EARLIEST_BIRTH = date(1930, 1, 1)
LATEST_BIRTH = date(2008, 12, 31)
PRIORITIES: tuple[str, ...] = ("routine", "urgent", "stat")


@dataclass(frozen=True)
class VitalRange:
    """The values a synthetic vital sign takes: ``low``, ``low + step``, ... up to ``high``."""

    name: str
    low: float
    high: float
    step: float = 1

    @property
    def count(self) -> int:
        """How many values the range holds."""
        return round((self.high - self.low) / self.step) + 1

    def value(self, k: int) -> float:
        """The ``k``-th value (modulo the range), rounded to the step."""
        return round(self.low + self.step * (k % self.count), 1)


# Mostly normal adult values, some flagged L or H, all possible (vitals.json); the highest
# diastolic is below the lowest systolic, so any pick is a valid set.
VITALS: tuple[VitalRange, ...] = (
    VitalRange("heart_rate", 50, 129),
    VitalRange("systolic_bp", 95, 169),
    VitalRange("diastolic_bp", 55, 94),
    VitalRange("temperature_c", 36.0, 38.8, 0.1),
    VitalRange("respiratory_rate", 10, 25),
    VitalRange("spo2", 90, 99),
)


@dataclass(frozen=True)
class LabTest:
    """A LOINC-coded test: its analyte's unit, the reference range printed with a result,
    and the range synthetic values are drawn from (wider, so some are flagged or critical)."""

    code: str
    name: str
    unit: str
    reference_low: float
    reference_high: float
    plausible: tuple[float, float]

    def order(self, patient_id: UUID, priority: str = "routine") -> PlaceOrder:
        """An order of this test for a patient."""
        return PlaceOrder(patient_id, self.code, self.name, priority)

    def analyte(self, value: float) -> AnalyteInput:
        """A result of this test with ``value``."""
        return AnalyteInput(
            self.code, self.name, value, self.unit, self.reference_low, self.reference_high
        )


POTASSIUM = LabTest("2823-3", "Potassium", "mmol/L", 3.5, 5.1, (2.4, 7.2))
GLUCOSE = LabTest("2345-7", "Glucose", "mg/dL", 70, 99, (35, 560))
HEMOGLOBIN = LabTest("718-7", "Hemoglobin", "g/dL", 12.0, 16.0, (6.0, 18.0))
SODIUM = LabTest("2951-2", "Sodium", "mmol/L", 136, 145, (118, 162))
LABS: tuple[LabTest, ...] = (POTASSIUM, GLUCOSE, HEMOGLOBIN, SODIUM)


@dataclass(frozen=True)
class Drug:
    """An RxNorm-coded drug at a usual adult dose, route and frequency."""

    code: str
    name: str
    dose: float
    dose_unit: str
    route: str
    frequency: str

    def prescribe(self, patient_id: UUID, override_reason: str | None = None) -> Prescribe:
        """A prescription of this drug for a patient."""
        return Prescribe(
            patient_id,
            self.code,
            self.name,
            self.dose,
            self.dose_unit,
            self.route,
            self.frequency,
            override_reason,
        )


LISINOPRIL = Drug("29046", "lisinopril", 10, "mg", "oral", "daily")
METFORMIN = Drug("6809", "metformin", 500, "mg", "oral", "bid")
ATORVASTATIN = Drug("83367", "atorvastatin", 20, "mg", "oral", "at bedtime")
AMOXICILLIN = Drug("723", "amoxicillin", 500, "mg", "oral", "tid")  # a penicillin
DRUGS: tuple[Drug, ...] = (LISINOPRIL, METFORMIN, ATORVASTATIN, AMOXICILLIN)


@dataclass(frozen=True)
class Allergen:
    """A substance patients are allergic to (a drug substance or a class alias of
    allergy_classes.json) and the reactions it is recorded with."""

    substance: str
    reactions: tuple[str, ...]


PENICILLIN = Allergen("penicillin", ("hives", "rash"))
ALLERGENS: tuple[Allergen, ...] = (
    PENICILLIN,
    Allergen("sulfa", ("rash", "hives")),
    Allergen("codeine", ("nausea", "itching")),
    Allergen("aspirin", ("wheezing", "hives")),
)
SEVERITIES: tuple[str, ...] = ("mild", "moderate")


class Synthetic:
    """Seeded synthetic people and values; the same seed hands out the same sequence.

    Patient ``i`` gets the MRN ``{mrn_prefix}{first_number + i:06d}``: the MRN is a function of
    the index, so a second load of the same population meets the same MRNs."""

    def __init__(
        self, seed: int = DEFAULT_SEED, mrn_prefix: str = "SYN-", first_number: int = 0
    ) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        self.mrn_prefix = mrn_prefix
        self.first_number = first_number

    def mrn(self, i: int) -> str:
        """The MRN of patient ``i``."""
        return f"{self.mrn_prefix}{self.first_number + i:06d}"

    def family_name(self, other_than: str | None = None) -> str:
        """A family name (different from ``other_than`` when given)."""
        return self.rng.choice([name for name in FAMILY_NAMES if name != other_than])

    def birth_date(self) -> date:
        """A birth date between 1930 and 2008."""
        first, last = EARLIEST_BIRTH.toordinal(), LATEST_BIRTH.toordinal()
        return date.fromordinal(self.rng.randint(first, last))

    def registration(self, i: int) -> RegisterPatient:
        """Patient ``i``: one or two given names, a family name, a birth date and a sex."""
        given = tuple(self.rng.sample(GIVEN_NAMES, 1 if self.rng.random() < 0.7 else 2))
        return RegisterPatient(
            mrn=self.mrn(i),
            family_name=self.family_name(),
            given_names=given,
            birth_date=self.birth_date(),
            sex=self.rng.choices(SEXES, _SEX_WEIGHTS)[0],
        )

    def renamed(self, patient_id: UUID, family_name: str) -> UpdateDemographics:
        """A change of a patient's family name to another one."""
        return UpdateDemographics(patient_id, family_name=self.family_name(family_name))

    def vitals(self, patient_id: UUID) -> RecordVitals:
        """A full set of vital signs, each drawn from its range."""
        return RecordVitals(
            patient_id, **{v.name: v.value(self.rng.randrange(v.count)) for v in VITALS}
        )

    def priority(self) -> str:
        """An order priority, mostly routine."""
        return self.rng.choices(PRIORITIES, (6, 3, 1))[0]

    def order(self, patient_id: UUID, test: LabTest) -> PlaceOrder:
        """An order of ``test`` at a drawn priority."""
        return test.order(patient_id, self.priority())

    def result(self, test: LabTest) -> AnalyteInput:
        """A result of ``test``, its value drawn from the test's plausible range."""
        low, high = test.plausible
        return test.analyte(round(self.rng.uniform(low, high), 1))

    def results(self, order_id: UUID, test: LabTest) -> ReceiveResults:
        """The lab's report of one drawn result of an order of ``test``."""
        return ReceiveResults(order_id, (self.result(test),))

    def allergy(self, patient_id: UUID, allergen: Allergen | None = None) -> RecordAllergy:
        """An allergy to ``allergen`` (drawn when not given), with a drawn reaction."""
        picked = allergen or self.rng.choice(ALLERGENS)
        return RecordAllergy(
            patient_id,
            picked.substance,
            self.rng.choice(picked.reactions),
            self.rng.choice(SEVERITIES),
        )


def indexed_vitals(patient_id: UUID, i: int) -> RecordVitals:
    """The ``i``-th set of a fixed walk through the vital ranges: no generator state, so
    concurrent writers and hot loops get the same values whatever the scheduling."""
    return RecordVitals(patient_id, **{v.name: v.value(i * (n + 1)) for n, v in enumerate(VITALS)})


_PATH_IDS = frozenset({"patient_id", "order_id", "medication_id"})
_HTTP_NAMES: Mapping[str, str] = {"analytes": "results"}


def http_body(command: object) -> dict[str, Any]:
    """A command input as the JSON body of its API request: the ids the URL path carries
    and the unset (None) fields left out, dates in ISO form, ids as strings."""
    if not dataclasses.is_dataclass(command) or isinstance(command, type):
        raise TypeError(f"not a command input: {command!r}")
    fields = dataclasses.asdict(command)
    return {
        _HTTP_NAMES.get(name, name): _json(value)
        for name, value in fields.items()
        if name not in _PATH_IDS and value is not None
    }


def _json(value: object) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items() if item is not None}
    return value

"""RDE^O11: pharmacy encoded orders as prescriptions (ORC-1 ``NW``).

The drug is RXE-2 (code^name^system; the triplet coded ``RXNORM``, else the first), the
dose RXE-3 (give amount, minimum) in RXE-5 (give units), the route RXR-1 (HL7 table 0162),
the frequency TQ1-3 (repeat pattern, v2.5) or else the interval of the quantity/timing
RXE-1.2 or ORC-7.2 (v2.3, v2.4), "as needed" when the priority (TQ1-9, RXE-1.6, ORC-7.6)
is ``PRN``. The prescriber is ORC-12 (a username; absent: the sending system's principal).
Safety alerts that need an override reason refuse the order (``AE``): HL7 carries no
override, a clinician decides it through the API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from events.application import ClinicalStore
from events.commands.base import CommandContext, CommandResult
from events.commands.medications import Prescribe
from services.hl7.contract import Refusal, Translation
from services.hl7.translate.fields import Message, Segment, in_system, number, timestamp
from services.hl7.translate.patients import clinician, identifier, known_patient
from services.hl7.translate.steps import Inbound, Steps

# HL7 table 0162 (route of administration), and our own words, as the backbone's routes.
ROUTES = {
    "PO": "oral",
    "OR": "oral",
    "IV": "iv",
    "IM": "im",
    "SC": "sc",
    "SQ": "sc",
    "IH": "inhaled",
    "NEB": "inhaled",
    "TP": "topical",
    "AP": "topical",
    "PR": "rectal",
    "SL": "sublingual",
    "TD": "transdermal",
    **{
        word.upper(): word
        for word in (
            "oral",
            "iv",
            "im",
            "sc",
            "inhaled",
            "topical",
            "rectal",
            "sublingual",
            "transdermal",
        )
    },
}
DOSE_UNITS = {
    "mg": "mg",
    "g": "g",
    "mcg": "mcg",
    "ug": "mcg",
    "\u00b5g": "mcg",
    "u": "units",
    "units": "units",
    "ml": "mL",
    "meq": "meq",
    "mmol": "mmol",
}
# Repeat patterns (HL7 table 0335) as the backbone's frequencies; Q<n>H is ``q<n>h``.
FREQUENCIES = {
    "QD": "daily",
    "Q1D": "daily",
    "QAM": "daily",
    "DAILY": "daily",
    "BID": "bid",
    "TID": "tid",
    "QID": "qid",
    "QHS": "at bedtime",
    "HS": "at bedtime",
    "ONCE": "once",
    "STAT": "stat",
    "QW": "weekly",
    "QWK": "weekly",
    "Q1W": "weekly",
    "PRN": "prn",
}
_EVERY_HOURS = re.compile(r"^Q(\d{1,2})H$")
MEMBERS = frozenset({"TQ1", "TQ2", "RXO", "RXE", "RXR", "RXC", "NTE", "OBX"})
SYSTEMS = frozenset({"RXNORM", "RXN"})


@dataclass(frozen=True)
class Prescription:
    """One encoded order read: what Prescribe needs, and where its prescriber is."""

    orc: Segment
    positions: dict[str, str]
    step: str
    drug_code: str
    drug_name: str
    dose: float
    dose_unit: str
    route: str
    frequency: str
    ordered_at: datetime | None


def _first(group: list[Segment], name: str) -> Segment | None:
    return next((s for s in group if s.name == name), None)


def frequency(orc: Segment, rxe: Segment, tq1: Segment | None) -> str:
    """The frequency: TQ1-3, else RXE-1.2, else ORC-7.2; ``prn`` by the priority."""
    sources = [(tq1, 3), (rxe, 1), (orc, 7)]
    pattern, where = "", "TQ1-3"
    for segment, field in sources:
        component = 1 if segment is tq1 else 2
        if segment is not None and segment.get(field, component):
            pattern, where = segment.get(field, component).upper(), segment.at(field)
            break
    priorities = [(tq1, 9, 1), (rxe, 1, 6), (orc, 7, 6)]
    prn = any(s is not None and s.get(f, c).upper() == "PRN" for s, f, c in priorities)
    if not pattern:
        if prn:
            return "prn"
        raise Refusal("AR", "TQ1-3", "the frequency (TQ1-3, RXE-1.2 or ORC-7.2) is required")
    every = _EVERY_HOURS.match(pattern.replace(" ", ""))
    found = f"q{int(every.group(1))}h" if every else FREQUENCIES.get(pattern)
    if found is None:
        raise Refusal("AE", where, f"repeat pattern {pattern!r} is not supported")
    if not prn or found == "prn":
        return found
    if every is None:
        raise Refusal("AE", where, f"{pattern} as needed (PRN) is not supported: only Q<n>H")
    return f"{found} prn"


def prescription(orc: Segment, group: list[Segment], index: int, inbound: Inbound) -> Prescription:
    """An ORC and its RXE, RXR and TQ1 as a prescription."""
    rxe = _first(group, "RXE")
    if rxe is None:
        raise Refusal("AR", "RXE", "the RXE segment is required")
    rxr = _first(group, "RXR")
    if rxr is None:
        raise Refusal("AR", "RXR", "the RXR segment (the route) is required")
    rxe.require(2, what="the give code (RXE-2)")
    drug = in_system(rxe, 2, SYSTEMS)
    if not drug.text:
        raise Refusal("AR", rxe.at(2), "the drug's name (RXE-2.2) is required")
    dose = number(rxe, 3)
    if dose is None:
        raise Refusal("AR", rxe.at(3), "the give amount (RXE-3) is required")
    sent_unit = rxe.require(5, what="the give units (RXE-5)")
    unit = DOSE_UNITS.get(sent_unit.lower()) or DOSE_UNITS.get(rxe.get(5, 2).lower())
    if unit is None:
        raise Refusal("AE", rxe.at(5), f"dose unit {sent_unit!r} is not supported")
    sent_route = rxr.require(1, what="the route (RXR-1)").upper()
    route = ROUTES.get(sent_route)
    if route is None:
        raise Refusal("AE", rxr.at(1), f"route {sent_route!r} is not supported")
    step = f"prescribe:{orc.get(2) or index}"
    how_often = frequency(orc, rxe, _first(group, "TQ1"))
    ordered_at = timestamp(orc, 9, inbound.zone)
    positions = {
        "patient_id": "PID-3",
        "drug_code": rxe.at(2),
        "drug_name": rxe.at(2),
        "dose": rxe.at(3),
        "dose_unit": rxe.at(5),
        "route": rxr.at(1),
        "prescriber": orc.at(12),
        "override_reason": rxe.at(2),
    }
    return Prescription(
        orc, positions, step, drug.code, drug.text, dose, unit, route, how_often, ordered_at
    )


def translate_prescriptions(message: Message, inbound: Inbound) -> Translation:
    """An RDE^O11 as one prescription per ORC."""
    ref = identifier(message.require("PID"), 3, inbound.authorities)
    groups = message.groups("ORC", MEMBERS)
    if not groups:
        raise Refusal("AR", "ORC", "the ORC segment is required")
    orders: list[Prescription] = []
    for index, group in enumerate(groups, start=1):
        orc = group[0]
        control = orc.require(1, what="the order control (ORC-1)").upper()
        if control != "NW":
            raise Refusal("AR", orc.at(1), f"order control {control!r} is not supported (NW)")
        orders.append(prescription(orc, group, index, inbound))

    def apply(store: ClinicalStore, ctx: CommandContext) -> list[CommandResult]:
        patient_id = known_patient(store, ref)
        steps = Steps(store, ctx, patient_id)
        for order in orders:
            _prescribe(store, steps, order, patient_id)
        return steps.results

    return inbound.translation(ref.key, apply, prescriptions=str(len(orders)))


def _prescribe(store: ClinicalStore, steps: Steps, order: Prescription, patient_id: UUID) -> None:
    prescriber = clinician(store, order.orc, 12, "prescriber", patient_id)
    cmd = Prescribe(
        patient_id,
        order.drug_code,
        order.drug_name,
        order.dose,
        order.dose_unit,
        order.route,
        order.frequency,
        prescriber=prescriber,
    )
    steps.run(
        order.step,
        "RXE",
        lambda c: store.prescribe(c, cmd),
        occurred_at=order.ordered_at,
        fields=order.positions,
    )

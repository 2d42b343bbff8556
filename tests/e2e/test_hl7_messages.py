"""Every supported HL7 v2 message type sent over a real socket to the running listener, with
the real translation, and what each did seen through the API: a stay from admission to
discharge, orders, results and their correction, a prescription, a merge, and the ACK codes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.hl7.client import message_of_file, read, send
from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import Backbone, chart_at, running_backbone

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parent.parent / "data" / "hl7"


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("hl7"), settings, 600) as running:
        running.wait_for_hl7()
        yield running


class Hospital:
    """One run's messages: the samples with this run's MRNs, numbers and physician."""

    def __init__(self, backbone: Backbone) -> None:
        self.backbone = backbone
        self.run = uuid.uuid4().hex[:8]
        self.doctor = backbone.username("physician")

    def text(self, name: str, *changes: tuple[str, str]) -> bytes:
        text = message_of_file(DATA / f"{name}.hl7").decode()
        for old, new in (
            *changes,
            ("MRN7001", f"A{self.run}"),
            ("MRN7002", f"B{self.run}"),
            ("PL-1001", f"PL1{self.run}"),
            ("PL-2001", f"PL2{self.run}"),
            ("dr.house", self.doctor),
            ("dr.wilson", self.doctor),
        ):
            text = text.replace(old, new)
        # control ids are per sender: this run's are its own
        return text.replace("|P|2.", f"{self.run}|P|2.", 1).encode()

    def send(self, name: str, *changes: tuple[str, str]) -> tuple[str, bytes]:
        ack = send(self.text(name, *changes), "127.0.0.1", self.backbone.hl7_port)
        return read(ack).code, ack


def accepted(hospital: Hospital, name: str, *changes: tuple[str, str]) -> bytes:
    code, ack = hospital.send(name, *changes)
    assert code == "AA", (name, ack.decode(errors="replace"))
    return ack


def patient_of(backbone: Backbone, mrn: str) -> str:
    found: list[dict[str, Any]] = []

    def registered() -> bool:
        answer = backbone.login("physician").get("/v1/patients", params={"mrn": mrn})
        found[:] = answer.json() if answer.status_code == 200 else []
        return bool(found)

    assert wait_until(registered, 30, 0.2), mrn
    return str(found[0]["patient_id"])


def chart_when(backbone: Backbone, patient: str, ready: Any) -> dict[str, Any]:
    """The chart once ``ready(chart)`` holds (the projections follow the store)."""
    physician = backbone.login("physician")
    charts: list[dict[str, Any]] = []

    def check() -> bool:
        charts.append(chart_at(physician, patient, 0))
        return bool(ready(charts[-1]))

    assert wait_until(check, 30, 0.3), charts[-1] if charts else None
    return charts[-1]


def test_a_stay_from_admission_to_discharge_with_orders_results_and_a_prescription(
    backbone: Backbone,
) -> None:
    hospital = Hospital(backbone)
    # ADT^A01 admits (and registers) the patient; the same message again gets the same ACK
    first = accepted(hospital, "adt_a01_admit")
    assert hospital.send("adt_a01_admit")[1] == first
    patient = patient_of(backbone, f"A{hospital.run}")
    # ORM^O01 and OML^O21 place orders; ORU^R01 results one, then corrects it; ORM cancels
    # the other; RDE^O11 prescribes
    accepted(hospital, "orm_o01_new")
    accepted(hospital, "oml_o21_new")
    accepted(hospital, "oru_r01_final")
    accepted(hospital, "oru_r01_correction")
    accepted(hospital, "orm_o01_cancel", ("PL-1001", "PL-2001"))
    accepted(hospital, "rde_o11_new", ("RX-1", f"RX{hospital.run}"))
    # ADT^A02 moves the patient, ADT^A08 updates the record, ADT^A03 discharges
    accepted(hospital, "adt_a02_transfer")
    accepted(hospital, "adt_a08_update")
    accepted(hospital, "adt_a03_discharge")

    chart = chart_when(backbone, patient, lambda c: c["encounters"] and c["encounter"] is None)
    [stay] = chart["encounters"]
    assert stay["location"]["ward"] == "ICU" and stay["class"] == "inpatient"
    assert chart["patient"]["family_name"] == "Okafor-Smith"
    [glucose] = [r for r in chart["recent_results"] if r["code"] == "2345-7"]
    assert (glucose["value"], glucose["status"], glucose["amended"]) == (95, "corrected", True)
    assert chart["pending_orders"] == []  # one resulted, the other cancelled
    [metformin] = chart["active_medications"]
    assert (metformin["drug_name"], metformin["frequency"]) == ("metformin", "bid")


def test_a_merge_reads_both_records_as_the_survivors_chart(backbone: Backbone) -> None:
    hospital = Hospital(backbone)
    accepted(hospital, "adt_a01_admit")
    accepted(hospital, "adt_a04_register", ("DR.HOUSE", "dr.house"))
    survivor = patient_of(backbone, f"A{hospital.run}")
    duplicate = patient_of(backbone, f"B{hospital.run}")
    # ADT^A40: MRG-1's record (the duplicate) is merged into PID-3's (the survivor)
    accepted(hospital, "adt_a40_merge")
    chart = chart_when(backbone, duplicate, lambda c: c.get("survivor_id") == survivor)
    assert duplicate in chart["merged_ids"]


def test_an_unknown_patient_is_ae_and_a_message_we_cannot_read_is_ar(backbone: Backbone) -> None:
    hospital = Hospital(backbone)
    code, ack = hospital.send("oru_r01_final", ("MRN7001", "NOBODY"))
    assert code == "AE" and b"\rERR|" in ack, ack
    code, ack = hospital.send("adt_a01_admit", ("ADT^A01^ADT_A01", "ADT^A99^ADT_A01"))
    assert code == "AR" and b"\rERR|" in ack, ack

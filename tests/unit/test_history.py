"""A patient's history: every change with before/after, every read; erased content stays hidden."""

from __future__ import annotations

from events.application import ClinicalStore
from events.commands.access import RecordChartView
from events.commands.medications import ChangeMedication
from events.commands.observations import RecordVitals
from events.commands.patients import ErasePatient
from events.store.history import history_entries
from tests.unit.conftest import NURSE, ctx
from tests.unit.test_write_side import _amoxicillin, registered


def test_history_shows_what_changed_and_who_read(store: ClinicalStore) -> None:
    patient = registered(store)
    medication = store.prescribe(ctx(), _amoxicillin(patient)).id
    store.change_medication(ctx(reason="renal function"), ChangeMedication(medication, dose=250))
    store.record_chart_view(ctx(NURSE), RecordChartView(patient, "chart", "treatment", False))

    entries = history_entries(store.event_log.of_patient(patient))

    assert [e["event_type"] for e in entries] == [
        "patient.registered",
        "medication.prescribed",
        "medication.changed",
        "chart.viewed",
    ]
    assert entries[2]["changes"] == {"dose": {"before": 500.0, "after": 250.0}}
    assert entries[2]["reason"] == "renal function"
    assert entries[3]["kind"] == "read" and entries[3]["changes"] is None


def test_an_erased_patients_history_keeps_only_metadata(store: ClinicalStore) -> None:
    patient = registered(store)
    store.record_vitals(ctx(NURSE), RecordVitals(patient, heart_rate=120))
    store.forget(ctx(reason="erasure request"), ErasePatient(patient, "GDPR art. 17"))

    entries = history_entries(store.event_log.of_patient(patient))

    assert [e["event_type"] for e in entries] == [
        "patient.registered",
        "vitals.recorded",
        "patient.erased",
    ]
    assert all(e["occurred_at"] is None and e["changes"] is None for e in entries[:2])
    assert all(e["erased"] for e in entries[:2])
    assert "Okonkwo" not in str(entries) and "120" not in str(entries)

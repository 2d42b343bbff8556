"""Unit tests for the $export kick-off parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.fhir.export.manifest import OutputFile, expired, manifest
from services.fhir.export.params import parse
from services.fhir.outcomes import FhirError

SERVED = ("Patient", "Observation", "Encounter")


def test_defaults_to_every_served_type() -> None:
    assert parse({}, SERVED).types == SERVED


def test_type_and_since_are_parsed() -> None:
    got = parse({"_type": "Observation,Patient", "_since": "2024-01-02T03:04:05Z"}, SERVED)
    assert got.types == ("Observation", "Patient")
    assert got.since == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "query",
    [
        {"_type": "Observation,Spaceship"},
        {"_typeFilter": "Observation?code=1"},
        {"patient": "Patient/1"},
        {"_outputFormat": "text/csv"},
        {"_since": "yesterday"},
        {"_since": "2024-01-02T03:04:05"},
        {"bogus": "1"},
    ],
)
def test_bad_parameters_are_refused_with_400(query: dict[str, str]) -> None:
    with pytest.raises(FhirError) as refused:
        parse(query, SERVED)
    assert refused.value.status == 400


def test_manifest_lists_each_file_and_requires_the_token() -> None:
    at = datetime(2024, 1, 2, tzinfo=UTC)
    got = manifest(at, "https://h/fhir/R4/$export", [OutputFile("Patient", "https://h/f/1", 3)])
    assert got["requiresAccessToken"] is True
    assert got["transactionTime"] == at.isoformat()
    assert got["output"] == [{"type": "Patient", "url": "https://h/f/1", "count": 3}]
    assert got["error"] == []


def test_files_expire_after_the_keep_period() -> None:
    done = datetime(2024, 1, 2, tzinfo=UTC)
    assert not expired(done, done + timedelta(minutes=59), timedelta(hours=1))
    assert expired(done, done + timedelta(hours=1), timedelta(hours=1))

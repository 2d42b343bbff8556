"""FHIR search parameters: what is understood, and a 400 naming anything that is not."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from services.fhir import criteria, search
from services.fhir.kinds import LAST_UPDATED, PATIENT, Kind, Param
from services.fhir.outcomes import FhirError

OBSERVATION = Kind(
    name="Observation",
    source="SELECT 1",
    to_resource=dict,
    params={
        "patient": PATIENT,
        "subject": PATIENT,
        "code": Param("token", ("code_system", "code")),
        "status": Param("token", ("status",)),
        "date": Param("date", ("effective",)),
        "family": Param("string", ("family",)),
    },
)


def refusal(items: list[tuple[str, str]]) -> FhirError:
    with pytest.raises(FhirError) as caught:
        search.parse(OBSERVATION, items)
    assert caught.value.status == 400
    return caught.value


def rendered(condition: criteria.Condition) -> str:
    """The condition's SQL with its placeholders, quoting identifiers as PostgreSQL would."""
    return condition.sql.as_string(None).replace('"', "")


def test_an_unknown_parameter_is_refused_by_name_with_the_known_ones_listed() -> None:
    error = refusal([("colour", "red")])
    assert "colour" in error.diagnostics and "code" in error.diagnostics
    assert error.code == "not-supported" and error.expression == ["colour"]


@pytest.mark.parametrize("name", ["_sort", "_include", "_summary", "_elements", "_total"])
def test_result_parameters_we_do_not_serve_are_refused_not_ignored(name: str) -> None:
    assert name in refusal([(name, "x")]).diagnostics


def test_modifiers_and_bad_counts_are_refused() -> None:
    assert "code:text" in refusal([("code:text", "glucose")]).diagnostics
    for count in ("0", "-1", "501", "ten"):
        assert "_count" in refusal([("_count", count)]).diagnostics


def test_patient_and_subject_name_the_patients_and_repeats_intersect() -> None:
    a, b = uuid4(), uuid4()
    parsed = search.parse(OBSERVATION, [("patient", f"Patient/{a},{b}"), ("subject", str(a))])
    assert parsed.patients == frozenset({a})
    assert parsed.conditions == ()
    assert "Encounter" in refusal([("patient", f"Encounter/{a}")]).diagnostics
    assert "not an id" in refusal([("patient", "12345")]).diagnostics


def test_paging_keeps_the_query_for_the_next_link_without_the_cursor() -> None:
    cursor = uuid4()
    parsed = search.parse(
        OBSERVATION, [("status", "final"), ("_count", "2"), ("_cursor", str(cursor))]
    )
    assert parsed.count == 2 and parsed.cursor == cursor
    assert parsed.query == (("status", "final"), ("_count", "2"))


def test_a_token_with_a_system_checks_both_columns_and_commas_mean_any() -> None:
    param = OBSERVATION.params["code"]
    both = criteria.token("code", param, "http://loinc.org|2345-7")
    assert rendered(both) == "r.code_system = %s AND r.code = %s"
    assert both.values == ("http://loinc.org", "2345-7")
    any_of = criteria.token("code", param, "2345-7,718-7")
    assert rendered(any_of) == "((r.code = %s) OR (r.code = %s))"
    assert any_of.values == ("2345-7", "718-7")
    no_system = criteria.token("code", param, "|local")
    assert rendered(no_system) == "r.code_system IS NULL AND r.code = %s"
    assert "system" in refusal([("status", "http://x|final")]).diagnostics


def test_dates_cover_their_precision_and_prefixes_compare_with_its_bounds() -> None:
    param = OBSERVATION.params["date"]
    month = criteria.date_condition("date", param, "2026-02")
    assert rendered(month) == "(r.effective)::date >= %s AND (r.effective)::date < %s"
    assert month.values == (date(2026, 2, 1), date(2026, 3, 1))
    december = criteria.date_condition("date", param, "ge2026-12")
    assert december.values == (date(2026, 12, 1),)
    after = criteria.date_condition("date", param, "gt2026-12-01T08:00:00Z")
    assert rendered(after) == "r.effective >= %s"
    assert after.values == (datetime(2026, 12, 1, 8, 0, 1, tzinfo=UTC),)
    before = criteria.date_condition("date", param, "lt2026")
    assert before.values == (date(2026, 1, 1),)
    assert "time zone" in refusal([("date", "2026-12-01T08:00:00")]).diagnostics
    assert "not a FHIR date" in refusal([("date", "yesterday")]).diagnostics


def test_last_updated_and_id_are_served_for_every_kind() -> None:
    params = search.params_of(OBSERVATION)
    assert params["_lastUpdated"] is LAST_UPDATED
    wanted = uuid4()
    parsed = search.parse(OBSERVATION, [("_id", str(wanted)), ("_lastUpdated", "ge2026-01-01")])
    assert [c.values for c in parsed.conditions] == [(str(wanted),), (date(2026, 1, 1),)]


def test_strings_match_case_insensitively_from_the_start_with_wildcards_escaped() -> None:
    condition = criteria.string("family", OBSERVATION.params["family"], "o_k%")
    assert rendered(condition) == "lower(r.family) LIKE lower(%s) || '%%'"
    assert condition.values == ("o\\_k\\%",)


def test_since_needs_an_instant_with_its_zone() -> None:
    assert search.since_of(None) is None
    assert search.since_of("2026-12-01T00:00:00Z") == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(FhirError):
        search.since_of("2026-12-01T00:00:00")


def test_a_reference_to_other_than_the_patient_filters_its_column_and_scopes_nothing() -> None:
    audit = Kind(
        name="AuditEvent",
        source="SELECT 1",
        to_resource=dict,
        params={"agent": Param("reference", ("user_id",), target="Practitioner")},
    )
    a, b = uuid4(), uuid4()

    parsed = search.parse(audit, [("agent", f"Practitioner/{a},{b}")])

    assert parsed.patients is None
    (condition,) = parsed.conditions
    assert rendered(condition) == "r.user_id = ANY(%s)" and condition.values == ([a, b],)
    with pytest.raises(FhirError, match="Patient references are not served"):
        search.parse(audit, [("agent", f"Patient/{a}")])

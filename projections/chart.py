"""The patient chart in one SQL round trip, and waiting for a projection position.

``fetch_chart`` builds the whole chart (demographics, allergies with their status and
criticality, ``allergy_status``: "recorded" with an active allergy, "no_known_allergies"
when stated since, else "not_recorded"; active medications, pending orders, recent results
with flags and trends (items name their ``encounter_id``), latest vitals,
``latest_weight`` / ``latest_height`` (kg / cm, or null), ``encounter``: the open one or
null, ``encounters``: the past ones, newest first) as one JSON value in a single query,
together with the store position the chart's projections have reached. A merged record's
chart is its survivor's: the survivor's demographics and everything of every record merged into it
(``Chart.survivor_id``, ``Chart.merged_ids``); rows never move between patients.
``wait_for_position`` gives readers read-your-writes: it waits, bounded, until the
projections have applied the event at a given store position.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection

from events.store.log import EventLog
from projections.engine.base import Projection
from projections.engine.state import mark_of
from projections.registry import named

CHART_PROJECTIONS = ("patient_chart", "medications", "orders", "lab_results")

# A record's merge group: follow merges in force up to the survivor (a survivor with no
# ``patients`` row — erased, or not projected yet — ends the chain before it), then down to
# every record merged into it, directly or through others. Depth-bounded: the write side
# refuses cycles, and a read model catching up across partitions may briefly hold one.
GROUP_CTE = """
WITH RECURSIVE up(id, depth) AS (
  SELECT %(pid)s::uuid, 0
  UNION ALL
  SELECT m.survivor_id, up.depth + 1 FROM patient_merges m JOIN up ON m.merged_id = up.id
  WHERE m.in_force AND up.depth < 32
    AND EXISTS (SELECT 1 FROM patients s WHERE s.patient_id = m.survivor_id)
),
root AS (SELECT id FROM up ORDER BY depth DESC LIMIT 1),
down(id, depth) AS (
  SELECT id, 0 FROM root
  UNION ALL
  SELECT m.merged_id, down.depth + 1 FROM patient_merges m JOIN down ON m.survivor_id = down.id
  WHERE m.in_force AND down.depth < 32
),
grp AS (
  SELECT (SELECT id FROM root) AS root,
         array_agg(DISTINCT id) AS ids,
         COALESCE(array_agg(DISTINCT id) FILTER (WHERE depth > 0), '{}') AS merged
  FROM down
)
"""

CHART_SELECT = """
SELECT json_build_object(
  'patient', (
    SELECT json_build_object(
      'patient_id', p.patient_id, 'mrn', p.mrn, 'family_name', p.family_name,
      'given_names', p.given_names, 'birth_date', p.birth_date, 'sex', p.sex)
    FROM patients p WHERE p.patient_id = g.root),
  'allergies', COALESCE((
    SELECT json_agg(json_build_object(
      'allergy_id', a.allergy_id, 'substance', a.substance, 'substance_code', a.substance_code,
      'reaction', a.reaction, 'severity', a.severity, 'criticality', a.criticality,
      'status', a.status, 'status_changed_at', a.status_changed_at,
      'recorded_at', a.recorded_at) ORDER BY a.recorded_at, a.allergy_id)
    FROM allergies a WHERE a.patient_id = ANY(g.ids)), '[]'::json),
  'allergy_status', (
    SELECT CASE
      WHEN EXISTS (SELECT 1 FROM allergies a
                   WHERE a.patient_id = ANY(g.ids) AND a.status = 'active') THEN 'recorded'
      WHEN bool_or(p.no_known_allergies_at IS NOT NULL) THEN 'no_known_allergies'
      ELSE 'not_recorded' END
    FROM patients p WHERE p.patient_id = ANY(g.ids)),
  'active_medications', COALESCE((
    SELECT json_agg(json_build_object(
      'medication_id', m.medication_id, 'drug_code', m.drug_code, 'drug_name', m.drug_name,
      'dose', m.dose, 'dose_unit', m.dose_unit, 'route', m.route, 'frequency', m.frequency,
      'status', m.status, 'verification', m.verification, 'prescribed_at', m.prescribed_at,
      'encounter_id', m.encounter_id)
      ORDER BY m.prescribed_at, m.medication_id)
    FROM medication_orders m WHERE m.patient_id = ANY(g.ids) AND m.status = 'active'),
    '[]'::json),
  'pending_orders', COALESCE((
    SELECT json_agg(json_build_object(
      'order_id', o.order_id, 'test_code', o.test_code, 'test_name', o.test_name,
      'priority', o.priority, 'status', o.status, 'placed_at', o.placed_at,
      'collected_at', o.collected_at, 'encounter_id', o.encounter_id,
      'placer_number', o.placer_number) ORDER BY o.placed_at, o.order_id)
    FROM lab_orders o
    WHERE o.patient_id = ANY(g.ids) AND o.status IN ('placed', 'collected')), '[]'::json),
  'recent_results', COALESCE((
    SELECT json_agg(json_build_object(
      'result_id', r.result_id, 'order_id', r.order_id, 'code', r.code, 'name', r.name,
      'value', r.value, 'comparator', r.comparator, 'value_text', r.value_text,
      'value_type', r.value_type, 'status', r.status, 'unit', r.unit,
      'reference_low', r.reference_low, 'reference_high', r.reference_high, 'flag', r.flag,
      'previous_value', r.previous_value, 'trend', r.trend, 'amended', r.amended,
      'original_value', r.original_value, 'original_text', r.original_text,
      'observed_at', r.observed_at, 'encounter_id', r.encounter_id)
      ORDER BY r.position DESC, r.seq)
    FROM (SELECT * FROM lab_results WHERE patient_id = ANY(g.ids)
          ORDER BY position DESC, seq LIMIT %(recent)s) r), '[]'::json),
  'latest_vitals', COALESCE((
    SELECT json_object_agg(v.vital, json_build_object(
      'value', v.value, 'flag', v.flag, 'measured_at', v.measured_at))
    FROM (SELECT DISTINCT ON (vital) * FROM latest_vitals WHERE patient_id = ANY(g.ids)
          AND vital NOT IN ('body_weight', 'body_height')
          ORDER BY vital, measured_at DESC, position DESC) v), '{}'::json),
  'latest_weight', (
    SELECT json_build_object('value', v.value, 'unit', v.unit, 'at', v.measured_at)
    FROM latest_vitals v WHERE v.patient_id = ANY(g.ids) AND v.vital = 'body_weight'
    ORDER BY v.measured_at DESC, v.position DESC LIMIT 1),
  'latest_height', (
    SELECT json_build_object('value', v.value, 'unit', v.unit, 'at', v.measured_at)
    FROM latest_vitals v WHERE v.patient_id = ANY(g.ids) AND v.vital = 'body_height'
    ORDER BY v.measured_at DESC, v.position DESC LIMIT 1),
  'encounter', (
    SELECT json_build_object(
      'encounter_id', e.encounter_id, 'class', e.encounter_class,
      'location', json_build_object('ward', e.ward, 'room', e.room, 'bed', e.bed),
      'attending_id', e.attending_id, 'consulting_ids', e.consulting, 'since', e.started_at)
    FROM encounters e WHERE e.patient_id = ANY(g.ids) AND e.ended_at IS NULL
    ORDER BY e.started_at DESC, e.position DESC LIMIT 1),
  'encounters', COALESCE((
    SELECT json_agg(json_build_object(
      'encounter_id', e.encounter_id, 'class', e.encounter_class,
      'location', json_build_object('ward', e.ward, 'room', e.room, 'bed', e.bed),
      'attending_id', e.attending_id, 'consulting_ids', e.consulting,
      'started_at', e.started_at, 'ended_at', e.ended_at,
      'disposition', e.disposition) ORDER BY e.ended_at DESC, e.position DESC)
    FROM encounters e WHERE e.patient_id = ANY(g.ids) AND e.ended_at IS NOT NULL),
    '[]'::json),
  'position', (
    SELECT COALESCE(MAX(position), 0) FROM projection_marks
    WHERE projection = ANY(%(projections)s) AND key = ANY(g.ids::text[])),
  'survivor_id', g.root,
  'merged_ids', to_json(g.merged)
)
FROM grp g
"""
CHART_SQL = GROUP_CTE + CHART_SELECT


@dataclass(frozen=True)
class Chart:
    """A patient's chart, and the highest store position of the patient's events it reflects.

    ``survivor_id`` is the record whose chart it is (the id asked for, unless that record is
    merged into another), ``merged_ids`` the records merged into it whose data it holds."""

    body: dict[str, Any]
    position: int
    survivor_id: UUID | None = None
    merged_ids: tuple[UUID, ...] = ()


def fetch_chart(conn: Connection[Any], patient_id: UUID, recent_results: int = 20) -> Chart | None:
    """The chart in one round trip; None if the patient is not (or no longer) projected."""
    row = conn.execute(
        CHART_SQL,
        {"pid": patient_id, "recent": recent_results, "projections": list(CHART_PROJECTIONS)},
    ).fetchone()
    if row is None:
        return None
    body: dict[str, Any] = row[0]
    position = int(body.pop("position") or 0)
    survivor = UUID(body.pop("survivor_id"))
    merged = tuple(sorted(UUID(i) for i in body.pop("merged_ids") or ()))
    if body["patient"] is None:
        return None
    return Chart(body, position, survivor, merged)


SURVIVORS_SQL = """
WITH RECURSIVE up(start, id, depth) AS (
  SELECT s, s, 0 FROM unnest(%(ids)s::uuid[]) AS s
  UNION ALL
  SELECT up.start, m.survivor_id, up.depth + 1 FROM patient_merges m JOIN up ON m.merged_id = up.id
  WHERE m.in_force AND up.depth < 32
    AND EXISTS (SELECT 1 FROM patients s WHERE s.patient_id = m.survivor_id)
)
SELECT DISTINCT ON (start) start, id FROM up WHERE depth > 0 ORDER BY start, depth DESC
"""


def survivors_of(conn: Connection[Any], patient_ids: list[UUID]) -> dict[UUID, UUID]:
    """The survivor each of these records is merged into (as the chart follows merges),
    for those that are merged; one query."""
    if not patient_ids:
        return {}
    rows = conn.execute(SURVIVORS_SQL, {"ids": patient_ids}).fetchall()
    return {row[0]: row[1] for row in rows}


def applied_position(conn: Connection[Any], projection: str) -> int:
    """The highest store position ``projection`` has applied."""
    row = conn.execute(
        "SELECT position FROM projection_positions WHERE projection = %s", (projection,)
    ).fetchone()
    return int(row[0]) if row else 0


def has_applied(
    conn: Connection[Any],
    stream: tuple[str, str],
    position: int,
    projections: tuple[Projection, ...] | None = None,
) -> bool:
    """True when every projection of ``projections`` (default: the chart's) that consumes
    the event at ``position`` on ``stream`` (topic, partition key) has applied it (by its
    (topic, key) mark, not a maximum)."""
    topic, key = stream
    for projection in projections or tuple(named(name) for name in CHART_PROJECTIONS):
        if topic not in projection.topics:
            continue
        mark = mark_of(conn.cursor(), projection.name, topic, key)
        if mark is None or mark < position:
            return False
    return True


def wait_for_position(
    conn: Connection[Any],
    log: EventLog,
    min_position: int,
    timeout_s: float,
    projections: tuple[Projection, ...] | None = None,
) -> bool:
    """Wait (bounded) until the event at ``min_position`` is applied; False on time-out."""
    if min_position <= 0:
        return True
    deadline = time.monotonic() + timeout_s
    stream = None
    while True:
        stream = stream or log.stream_of(min_position)
        if stream is not None and has_applied(conn, stream, min_position, projections):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)

"""Chart reads from a read replica (``BACKBONE_READ_REPLICA_URL``), writes on the primary.

There is no streaming replica on this machine. The "replica" is a second database on the
same PostgreSQL cluster holding a copy of the read schema, read-only for every session
(``default_transaction_read_only``, as on a hot standby), and behind the primary until the
test copies the primary's read tables into it (its ``catch_up``, in one snapshot, marks
with the rows, as replay would show them). What this shows: the chart, patient search and
FHIR reads are answered from the replica URL, connected as the API's own role; a
``min_position`` wait waits on the replica's marks, not the primary's; the writes and the
paths that must see the latest write (break-glass and its alert, as-of charts) stay on the
primary. What it cannot show: real streaming replication's lag or a failover.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from projections.chart import fetch_chart
from projections.engine.database import create_tables
from services.api.container import DEPARTMENT_TABLES
from services.database_roles import API
from services.local_stack.processes import wait_until
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import (
    METFORMIN,
    Backbone,
    join_care_team,
    refused,
    registered_at,
    running_backbone,
    written,
)

pytestmark = pytest.mark.integration


@dataclass
class FakeReplica:
    """A read-only copy of the primary's read schema that catches up when told to."""

    name: str
    url: str
    primary_url: str
    schema: str

    def owner_session(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute("SET default_transaction_read_only = off")  # only the test writes here
        return conn

    def catch_up(self) -> None:
        """Copy every read table of the primary as of one snapshot (replay's view of it)."""
        with psycopg.connect(self.primary_url) as src, self.owner_session() as dst:
            src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            create_tables(dst, self.schema, DEPARTMENT_TABLES)
            tables = [
                str(row[0])
                for row in dst.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,)
                )
            ]
            with dst.transaction():
                for table in tables:
                    name = sql.Identifier(self.schema, table)
                    dst.execute(sql.SQL("TRUNCATE {}").format(name))
                    copy_out = sql.SQL("COPY {} TO STDOUT").format(name)
                    copy_in = sql.SQL("COPY {} FROM STDIN").format(name)
                    with (
                        src.cursor().copy(copy_out) as rows,
                        dst.cursor().copy(copy_in) as into,
                    ):
                        for data in rows:
                            into.write(data)
                # What `backbone migrate` grants the API on the primary, as replication would.
                role, schema = sql.Identifier(API.role), sql.Identifier(self.schema)
                dst.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role))
                dst.execute(
                    sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, role)
                )

    def rename_on_replica_only(self, patient: UUID, family_name: str) -> None:
        with self.owner_session() as conn:
            conn.execute(
                sql.SQL("UPDATE {} SET family_name = %s WHERE patient_id = %s").format(
                    sql.Identifier(self.schema, "patients")
                ),
                (family_name, patient),
            )

    def session_roles(self) -> set[str]:
        """Who is connected to the replica, besides this session."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT DISTINCT usename FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            ).fetchall()
        return {str(row[0]) for row in rows}


@pytest.fixture(scope="module")
def replicated(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Backbone, FakeReplica]]:
    name = f"replica_{uuid.uuid4().hex[:10]}"
    database, owner = sql.Identifier(name), sql.Identifier(settings.postgres_user)
    stack.postgres.admin(
        sql.SQL(
            "CREATE DATABASE {} OWNER {}; ALTER DATABASE {} SET default_transaction_read_only = on;"
        )
        .format(database, owner, database)
        .as_string()
    )
    url = make_conninfo(settings.database_url, dbname=name)
    extra = {"BACKBONE_READ_REPLICA_URL": url}
    tmp = tmp_path_factory.mktemp("replica")
    try:
        with running_backbone(tmp, settings, 600, extra) as running:
            schema = running.env["BACKBONE_READ_SCHEMA"]
            replica = FakeReplica(name, url, settings.database_url, schema)
            replica.catch_up()
            yield running, replica
    finally:
        stack.postgres.admin(sql.SQL("DROP DATABASE {} WITH (FORCE);").format(database).as_string())


def applied_on_primary(settings: ServiceSettings, schema: str, patient: UUID, at: int) -> bool:
    options = f"-c search_path={schema}"
    with psycopg.connect(settings.database_url, options=options) as conn:
        chart = fetch_chart(conn, patient)
    return chart is not None and chart.position >= at and bool(chart.body["active_medications"])


def test_the_chart_is_read_from_the_replica_and_waits_for_its_marks(
    replicated: tuple[Backbone, FakeReplica], settings: ServiceSettings
) -> None:
    backbone, replica = replicated
    physician = backbone.login("physician")
    # Given a patient with a prescription the primary's projections have applied
    mrn = f"REPL-{uuid.uuid4().hex[:8]}"
    patient, _ = registered_at(physician, mrn)
    join_care_team(backbone, patient, "physician")
    position = written(physician.post(f"/v1/patients/{patient}/medications", json=METFORMIN))[
        "position"
    ]
    assert wait_until(lambda: applied_on_primary(settings, replica.schema, patient, position), 30)

    # When the chart is read at that position before the replica has it, then it waits on the
    # replica (bounded) and answers 503: the primary's marks are not what it looks at
    behind = physician.get(f"/v1/patients/{patient}/chart", params={"min_position": position})
    refused(behind, 503)

    # When the replica catches up, then the same read answers, from the replica's rows
    replica.catch_up()
    chart = physician.get(f"/v1/patients/{patient}/chart", params={"min_position": position})
    assert chart.status_code == 200, chart.text
    assert [m["drug_name"] for m in chart.json()["active_medications"]] == ["metformin"]
    replica.rename_on_replica_only(patient, "Replicaperson")
    assert physician.get(f"/v1/patients/{patient}/chart").json()["patient"]["family_name"] == (
        "Replicaperson"
    )
    # Patient search and FHIR reads too; and the replica is reached as the API's own role
    mrn_hits = physician.get("/v1/patients", params={"mrn": mrn})
    assert [p["family_name"] for p in mrn_hits.json()] == ["Replicaperson"]
    fhir = physician.get(f"/fhir/R4/Patient/{patient}")
    assert fhir.status_code == 200, fhir.text
    assert fhir.json()["name"][0]["family"] == "Replicaperson"
    assert replica.session_roles() == {API.role}


def test_writes_and_reads_of_the_latest_write_stay_on_the_primary(
    replicated: tuple[Backbone, FakeReplica],
) -> None:
    backbone, replica = replicated
    physician, nurse = backbone.login("physician"), backbone.login("nurse")
    patient, _ = registered_at(physician, f"REPL-{uuid.uuid4().hex[:8]}")
    join_care_team(backbone, patient, "physician")
    # Given a replica that never sees this patient (read-only, never caught up again)
    # When a nurse off the care team breaks the glass, then it answers once its alert is
    # visible where compliance reads (the primary), and compliance sees it at once
    glass = written(nurse.post(f"/v1/patients/{patient}/break-glass", json={"reason": "arrest"}))
    alerts = backbone.login("compliance").get("/v1/audit/alerts")
    assert alerts.status_code == 200, alerts.text
    assert str(patient) in alerts.text and glass["expires_in_s"] > 0
    # And an as-of chart, replayed into temporary tables (no hot standby can make one), works
    now = datetime.now(UTC).isoformat()
    past = physician.get(f"/v1/patients/{patient}/chart", params={"as_of": now})
    assert past.status_code == 200, past.text
    assert past.json()["patient"]["family_name"] == "Testperson"
    # While the chart itself, read from the replica, is not there yet
    refused(physician.get(f"/v1/patients/{patient}/chart"), 503)
    assert replica.session_roles() <= {API.role}

"""schemathesis against the running API: no request the OpenAPI document allows gets a 5xx,
and every write it accepts reaches every projection that consumes it.

Every operation of the document, as every role, with a bounded number of generated cases
per operation (``BACKBONE_FUZZ_EXAMPLES``). Path ids are those of a real patient, order and
prescription (made first), so that generated bodies reach the clinical rules instead of
stopping at 404. ``/v1/auth/logout`` is left out (it would end the sessions the cases run
in), and the erasure route keeps generated ids (it would erase the patient the rest use).
Each ``201`` with a position is waited for, bounded, in every consuming projection; at the
end nothing may have been dead-lettered.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from events.settings import StoreSettings
from projections.chart import wait_for_position
from projections.engine.service import projection_statuses
from projections.settings import ProjectionSettings
from services.api.app import create_app
from services.api.container import DEPARTMENT_TABLES
from services.bootstrap import Backbone as Parts
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import (
    ROLES,
    Backbone,
    join_care_team,
    json_of,
    register_patient,
    running_backbone,
)

pytestmark = pytest.mark.integration

FUZZ_EXAMPLES = int(os.environ.get("BACKBONE_FUZZ_EXAMPLES", "6"))
SCHEMA = schemathesis.openapi.from_dict(create_app().openapi()).exclude(path="/v1/auth/logout")
RUN: dict[str, int] = {"requests": 0, "server_errors": 0, "accepted": 0}
LISINOPRIL = {
    "drug_code": "29046",
    "drug_name": "lisinopril",
    "dose": 10,
    "dose_unit": "mg",
    "route": "oral",
    "frequency": "daily",
}


@pytest.fixture(scope="module")
def backbone(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backbone]:
    with running_backbone(tmp_path_factory.mktemp("fuzz"), settings, 3600) as running:
        yield running
    print(  # noqa: T201
        f"\nschemathesis: {RUN['requests']} requests, {RUN['accepted']} accepted writes, "
        f"{RUN['server_errors']} server errors"
    )


@pytest.fixture(scope="module")
def parts(backbone: Backbone) -> Iterator[Parts]:
    """The composition root of the running backbone's store and read schema."""
    env = backbone.env
    store = StoreSettings(
        store_name=env["BACKBONE_STORE_NAME"],
        master_key_file=env["BACKBONE_MASTER_KEY_FILE"],
        witness_dir=env["BACKBONE_WITNESS_DIR"],
    )
    reads = ProjectionSettings(
        read_schema=env["BACKBONE_READ_SCHEMA"],
        store_name=env["BACKBONE_STORE_NAME"],
        consumer_group_prefix=env["BACKBONE_CONSUMER_GROUP_PREFIX"],
    )
    made = Parts(ServiceSettings(), store, reads)
    yield made
    made.close()


@pytest.fixture(scope="module")
def world(backbone: Backbone) -> dict[str, str]:
    """A patient with every clinician on the care team, an order and a prescription."""
    physician = backbone.login("physician")
    patient = register_patient(physician, f"FUZZ-{backbone.tag}")
    join_care_team(backbone, patient, "physician", "nurse", "pharmacist")
    order = json_of(
        physician.post(
            f"/v1/patients/{patient}/orders",
            json={"test_code": "2823-3", "test_name": "Potassium", "priority": "routine"},
        )
    )
    medication = json_of(physician.post(f"/v1/patients/{patient}/medications", json=LISINOPRIL))
    return {
        "patient_id": str(patient),
        "order_id": order["id"],
        "medication_id": medication["id"],
    }


@pytest.fixture(scope="module")
def sessions(backbone: Backbone) -> dict[str, dict[str, str]]:
    return {
        role: {"Authorization": backbone.login(role).headers["Authorization"]} for role in ROLES
    }


@SCHEMA.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_the_schema_allows_gets_a_server_error_and_every_201_is_visible(
    case: schemathesis.Case,
    backbone: Backbone,
    sessions: dict[str, dict[str, str]],
    world: dict[str, str],
    parts: Parts,
) -> None:
    if not case.path.endswith("/erase"):
        for name in case.path_parameters or {}:
            if name in world:
                case.path_parameters[name] = world[name]  # type: ignore[index]
    for role, headers in sessions.items():
        response = case.call(
            base_url=backbone.url, headers=headers, timeout=30, verify=str(backbone.ca_file)
        )
        RUN["requests"] += 1
        if response.status_code >= 500:
            RUN["server_errors"] += 1
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} as {role}: {response.status_code} "
            f"{response.text[:300]}"
        )
        if response.status_code == 201 and case.method == "POST":
            position = response.json().get("position", 0)
            RUN["accepted"] += 1
            with parts.reads.connection() as conn:
                visible = wait_for_position(
                    conn, parts.store.event_log, position, 30, DEPARTMENT_TABLES
                )
            assert visible, f"{case.method} {case.path} as {role}: 201 at {position} not visible"


def test_no_accepted_write_was_dead_lettered(parts: Parts) -> None:
    statuses = projection_statuses(parts.reads, DEPARTMENT_TABLES)
    assert {s.name: s.deadlettered_total for s in statuses if s.deadlettered_total} == {}
    assert [s.halted for s in statuses if s.halted] == []

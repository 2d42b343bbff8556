"""Every cell of the role-by-route table of the design: allowed roles pass, all others get 403."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest

from services.api.app import create_app
from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings
from tests.e2e.harness import (
    METFORMIN,
    ROLES,
    Backbone,
    join_care_team,
    register_patient,
    running_backbone,
)
from tests.e2e.matrix_fhir import FHIR_NOT_ROLE_BOUND, FHIR_ROUTES, is_forbidden

pytestmark = pytest.mark.integration


@dataclass
class World:
    """A patient with every clinical role on the care team, an order and a medication."""

    backbone: Backbone
    patient: UUID
    order: UUID
    medication: UUID


@pytest.fixture(scope="module")
def world(
    stack: LocalStack, settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with running_backbone(tmp_path_factory.mktemp("matrix"), settings, 600) as backbone:
        physician = backbone.login("physician")
        patient = register_patient(physician, f"MX-{uuid.uuid4().hex[:8]}")
        join_care_team(backbone, patient, "physician", "nurse", "pharmacist")
        order = physician.post(
            f"/v1/patients/{patient}/orders", json={"test_code": "2345-7", "test_name": "Glucose"}
        ).json()["id"]
        medication = physician.post(
            f"/v1/patients/{patient}/medications",
            json=METFORMIN,
        ).json()["id"]
        yield World(backbone, patient, UUID(order), UUID(medication))


Call = Callable[[httpx.Client, World], httpx.Response]


def _post(path: str, body: dict[str, Any]) -> Call:
    return lambda c, w: c.post(
        path.format(p=w.patient, o=w.order, m=w.medication, u=w.backbone.users["nurse"]), json=body
    )


def _get(path: str, params: dict[str, Any] | None = None) -> Call:
    return lambda c, w: c.get(path.format(p=w.patient, o=w.order, m=w.medication), params=params)


def _new_user(c: httpx.Client, w: World) -> httpx.Response:
    return c.post(
        "/v1/admin/users",
        json={
            "username": f"u{uuid.uuid4().hex[:10]}",
            "display_name": "New",
            "role": "billing",
            "password": "another long passphrase",
        },
    )


ADMITTERS = {"front_desk", "nurse", "physician", "admin"}


def _encounter(action: str, body: dict[str, Any]) -> Call:
    """An action on an encounter that does not exist: 404 for the roles allowed."""
    return lambda c, _: c.post(f"/v1/encounters/{uuid.uuid4()}/{action}", json=body)


ROUTES: dict[str, tuple[Call, set[str]]] = {
    "POST /v1/patients": (
        lambda c, _: c.post(
            "/v1/patients",
            json={
                "mrn": f"M-{uuid.uuid4().hex[:8]}",
                "family_name": "X",
                "given_names": ["Y"],
                "birth_date": "2001-01-01",
                "sex": "other",
            },
        ),
        {"front_desk", "nurse", "physician", "admin"},
    ),
    "GET /v1/patients?mrn": (
        _get("/v1/patients", {"name": "Testperson"}),
        {"front_desk", "nurse", "physician", "pharmacist", "billing"},
    ),
    "GET /v1/patients/{id}/chart": (
        _get("/v1/patients/{p}/chart"),
        {"nurse", "physician", "pharmacist"},
    ),
    "GET /v1/patients/{id}/chart?as_of": (
        _get("/v1/patients/{p}/chart", {"as_of": "2030-01-01T00:00:00+00:00"}),
        {"physician", "compliance"},
    ),
    "GET /v1/patients/{id}/history": (
        _get("/v1/patients/{p}/history"),
        {"physician", "compliance"},
    ),
    "POST /v1/patients/{id}/care-team": (
        _post("/v1/patients/{p}/care-team", {"user_id": "{u}"}),
        {"admin", "nurse", "physician", "pharmacist"},
    ),
    "POST /v1/patients/{id}/break-glass": (
        _post("/v1/patients/{p}/break-glass", {"reason": "emergency admission"}),
        {"nurse", "physician", "pharmacist"},
    ),
    "POST /v1/patients/{id}/allergies": (
        _post(
            "/v1/patients/{p}/allergies",
            {"substance": "latex", "reaction": "rash", "severity": "mild"},
        ),
        {"nurse", "physician"},
    ),
    "POST /v1/patients/{id}/vitals": (
        _post("/v1/patients/{p}/vitals", {"heart_rate": 80}),
        {"nurse", "physician"},
    ),
    "POST /v1/patients/{id}/observations": (
        _post("/v1/patients/{p}/observations", {"kind": "body_weight", "value": 70, "unit": "kg"}),
        {"nurse", "physician"},
    ),
    "POST /v1/patients/{id}/orders": (
        _post("/v1/patients/{p}/orders", {"test_code": "718-7", "test_name": "Hemoglobin"}),
        {"physician"},
    ),
    "POST /v1/orders/{id}/specimen": (_post("/v1/orders/{o}/specimen", {}), {"nurse", "lab_tech"}),
    "POST /v1/orders/{id}/results": (
        _post(
            "/v1/orders/{o}/results",
            {"results": [{"code": "2345-7", "name": "Glucose", "value": 90, "unit": "mg/dL"}]},
        ),
        {"lab_tech"},
    ),
    "POST /v1/orders/{id}/cancel": (
        _post("/v1/orders/{o}/cancel", {"reason": "entered in error"}),
        {"physician"},
    ),
    "POST /v1/patients/{id}/medications": (
        _post(
            "/v1/patients/{p}/medications",
            {
                "drug_code": "161",
                "drug_name": "acetaminophen",
                "dose": 500,
                "dose_unit": "mg",
                "route": "oral",
                "frequency": "prn",
            },
        ),
        {"physician"},
    ),
    "POST /v1/medications/{id}/change": (
        _post("/v1/medications/{m}/change", {"frequency": "daily", "reason": "adherence"}),
        {"physician"},
    ),
    "POST /v1/medications/{id}/discontinue": (
        _post("/v1/medications/{m}/discontinue", {"reason": "not needed"}),
        {"physician"},
    ),
    "POST /v1/medications/{id}/administrations": (
        _post(
            "/v1/medications/{m}/administrations",
            {"dose": 500, "override_reason": "first dose before verification (urgent)"},
        ),
        {"nurse"},
    ),
    "GET /v1/audit/access": (_get("/v1/audit/access"), {"compliance"}),
    "GET /v1/audit/alerts": (_get("/v1/audit/alerts"), {"compliance"}),
    "POST /v1/admin/users": (_new_user, {"admin"}),
    "POST /v1/admin/patients/{id}/erase": (
        lambda c, _: c.post(
            f"/v1/admin/patients/{uuid.uuid4()}/erase",
            json={"legal_basis": "GDPR art. 17", "reason": "matrix check"},
        ),
        {"compliance", "admin"},
    ),
    "POST /v1/admin/users/{id}/roles": (
        lambda c, w: c.post(
            f"/v1/admin/users/{w.backbone.users['billing']}/roles", json={"role": "billing"}
        ),
        {"admin"},
    ),
    # (an unknown id for what would change a world user: the allowed role gets 404, not 403)
    "POST /v1/admin/users/{id}/approve": (
        lambda c, _: c.post(f"/v1/admin/users/{uuid.uuid4()}/approve"),
        {"admin"},
    ),
    "POST /v1/admin/users/{id}/deactivate": (
        lambda c, _: c.post(f"/v1/admin/users/{uuid.uuid4()}/deactivate", json={"reason": "x" * 8}),
        {"admin"},
    ),
    "POST /v1/admin/users/{id}/sessions/revoke": (
        lambda c, _: c.post(
            f"/v1/admin/users/{uuid.uuid4()}/sessions/revoke", json={"reason": "lost badge"}
        ),
        {"admin"},
    ),
    "POST /v1/patients/{id}/encounters": (
        lambda c, w: c.post(
            f"/v1/patients/{w.patient}/encounters",
            json={
                "encounter_class": "outpatient",
                "location": {"ward": "OPD"},
                "attending_id": str(w.backbone.users["physician"]),
            },
        ),
        ADMITTERS,
    ),
    "POST /v1/encounters/{id}/transfer": (
        _encounter("transfer", {"location": {"ward": "ICU"}}),
        ADMITTERS,
    ),
    "POST /v1/encounters/{id}/update": (
        _encounter("update", {"encounter_class": "inpatient"}),
        ADMITTERS,
    ),
    "POST /v1/encounters/{id}/end": (
        _encounter("end", {"disposition": "home"}),
        ADMITTERS,
    ),
    # (an unknown record to merge: the allowed roles get 404, not 403)
    "POST /v1/patients/{id}/merge": (
        lambda c, w: c.post(
            f"/v1/patients/{w.patient}/merge",
            json={"merged_id": str(uuid.uuid4()), "reason": "matrix check"},
        ),
        {"admin", "front_desk"},
    ),
    "POST /v1/patients/{id}/unmerge": (
        lambda c, w: c.post(
            f"/v1/patients/{w.patient}/unmerge",
            json={"merged_id": str(uuid.uuid4()), "reason": "matrix check"},
        ),
        {"admin", "front_desk"},
    ),
    "GET /v1/patients/{id}/care-team": (
        _get("/v1/patients/{p}/care-team"),
        {"admin", "compliance", "nurse", "physician", "pharmacist"},
    ),
    "POST /v1/patients/{id}/allergies/none-known": (
        _post("/v1/patients/{p}/allergies/none-known", {}),
        {"nurse", "physician"},
    ),
    "POST /v1/patients/{id}/allergies/{allergy_id}/status": (
        lambda c, w: c.post(
            f"/v1/patients/{w.patient}/allergies/{uuid.uuid4()}/status",
            json={"status": "inactive", "reason": "resolved"},
        ),
        {"nurse", "physician"},
    ),
    "POST /v1/orders/{id}/results/{result_id}/amend": (
        lambda c, w: c.post(
            f"/v1/orders/{w.order}/results/{uuid.uuid4()}/amend",
            json={"value": 5.1, "unit": "mmol/L", "reason": "recalibrated"},
        ),
        {"lab_tech"},
    ),
    # (the pharmacist is not on the ward yet: every allowed role may assign them)
    "POST /v1/admin/wards/{ward}/staff": (
        lambda c, w: c.post(
            f"/v1/admin/wards/M{uuid.uuid4().hex[:6]}/staff",
            json={"user_id": str(w.backbone.users["pharmacist"])},
        ),
        {"admin"},
    ),
    "GET /v1/admin/wards/{ward}/staff": (_get("/v1/admin/wards/ICU/staff"), {"admin"}),
    "GET /v1/audit/denials": (_get("/v1/audit/denials"), {"compliance"}),
    "GET /v1/pharmacy/queue": (_get("/v1/pharmacy/queue"), {"pharmacist"}),
    "POST /v1/pharmacy/queue/{item_id}/verify": (
        lambda c, _: c.post(f"/v1/pharmacy/queue/{uuid.uuid4()}/verify", json={}),
        {"pharmacist"},
    ),
    "POST /v1/pharmacy/queue/{item_id}/reject": (
        lambda c, _: c.post(f"/v1/pharmacy/queue/{uuid.uuid4()}/reject", json={"reason": "dose"}),
        {"pharmacist"},
    ),
    "GET /v1/inbox": (_get("/v1/inbox"), {"physician"}),
    "GET /v1/inbox/escalations": (
        _get("/v1/inbox/escalations"),
        {"nurse", "physician", "pharmacist"},
    ),
    "POST /v1/inbox/{item_id}/ack": (
        lambda c, _: c.post(f"/v1/inbox/{uuid.uuid4()}/ack"),
        {"physician"},
    ),
}
# Open to every signed-in user (their own account) or to anyone (log in, health).
NOT_ROLE_BOUND = {
    "POST /v1/auth/token",
    "POST /v1/auth/logout",
    "GET /v1/me",
    "POST /v1/me/password",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
} | FHIR_NOT_ROLE_BOUND
ROUTES.update(FHIR_ROUTES)

CELLS = [(route, role) for route in ROUTES for role in ROLES]


@pytest.mark.parametrize(("route", "role"), CELLS, ids=[f"{r} as {role}" for r, role in CELLS])
def test_role_route_cell(world: World, route: str, role: str) -> None:
    call, allowed = ROUTES[route]
    answer = call(world.backbone.login(role), world)
    if role in allowed:
        assert answer.status_code not in (401, 403), f"{role} refused: {answer.text}"
        assert answer.status_code < 500, answer.text
    else:
        assert answer.status_code == 403, f"{role} was not refused: {answer.status_code}"
        assert is_forbidden(route, answer), answer.text


def test_without_a_token_every_route_answers_401(world: World) -> None:
    anonymous = world.backbone.client()
    for route, (call, _) in ROUTES.items():
        assert call(anonymous, world).status_code == 401, route


def test_the_matrix_covers_every_operation_of_the_api() -> None:
    """A new route without a row here would escape the role check."""
    operations = {
        f"{method.upper()} {path}"
        for path, methods in create_app().openapi()["paths"].items()
        for method in methods
    }
    covered = {re.sub(r"\?.*$", "", name) for name in ROUTES} | NOT_ROLE_BOUND
    named = {re.sub(r"\{[a-z_]*id\}", "{id}", op) for op in operations}
    normal = {re.sub(r"\{[a-z_]*id\}", "{id}", op) for op in covered}
    assert named - normal == set()

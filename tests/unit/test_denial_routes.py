"""Denials record the route's whole template, also for routes of nested routers."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from services.api.denials import route_template


def test_a_route_of_a_router_inside_a_prefixed_router_keeps_the_prefix() -> None:
    seen: list[str] = []
    inner = APIRouter()

    @inner.get("/{resource_type}/{resource_id}/_history")
    def history(resource_type: str, resource_id: str, request: Request) -> dict[str, str]:
        seen.append(route_template(request))
        return {}

    @inner.get("/metadata")
    def metadata(request: Request) -> dict[str, str]:
        seen.append(route_template(request))
        return {}

    outer = APIRouter(prefix="/fhir/R4")
    outer.include_router(inner)
    app = FastAPI()
    app.include_router(outer)

    client = TestClient(app)
    client.get("/fhir/R4/Patient/1234/_history")
    client.get("/fhir/R4/metadata")

    assert seen == ["/fhir/R4/{resource_type}/{resource_id}/_history", "/fhir/R4/metadata"]

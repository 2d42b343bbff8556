"""The FastAPI application: routers, problem+json errors, metrics; one container per process.

Every request passes, outermost first: the latency metric, the security headers, the body
cap (413 before anything reads the body), then the routes. The interactive docs and the
OpenAPI document are routes of their own, so that outside development they need a token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from services.api import fhir, problems
from services.api.container import Container, build_container
from services.api.deps import docs_reader
from services.api.fhir import export as fhir_export
from services.api.fhir import responses as fhir_responses
from services.api.guards import Guards
from services.api.middleware import BodyLimit, SecurityHeaders
from services.api.observability import LatencyMiddleware
from services.api.openapi import document_problems
from services.api.routes import (
    admin,
    audit,
    auth,
    care_team,
    encounters,
    health,
    inbox,
    medications,
    orders,
    patients,
    pharmacy,
    wards,
)
from services.settings import ServiceSettings, get_settings


def create_app(
    container_factory: Callable[[], Container] = build_container,
    settings: ServiceSettings | None = None,
) -> FastAPI:
    """The API; ``settings`` (default: the process's) set the body cap, TLS and limits."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.guards = Guards(settings)
        app.state.container = container_factory()
        app.state.readiness = health.readiness_cache(app.state.container)
        # FHIR bulk exports run in this process: jobs left by the last one are failed now.
        app.state.fhir_exports = fhir_export.build_runner(app.state.container)
        try:
            yield
        finally:
            app.state.fhir_exports.close()
            app.state.container.close()
            app.state.guards.close()

    app = FastAPI(
        title="clinical-backbone API",
        version="1",
        description="Clinical commands into the event store; charts from the projections. "
        "Every read of patient data is audited.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    problems.install(app)
    fhir_responses.install(app)
    # Added innermost first: the last one added sees the request first.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, tls=settings.api_tls)
    app.add_middleware(LatencyMiddleware)
    for router in (
        auth.router,
        patients.router,
        care_team.router,
        encounters.router,
        orders.router,
        medications.router,
        audit.router,
        admin.router,
        wards.router,
        pharmacy.router,
        inbox.router,
        health.router,
        fhir.router,
    ):
        app.include_router(router)
    _document(app)
    document_problems(app)
    return app


def _document(app: FastAPI) -> None:
    guarded = [Depends(docs_reader)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=guarded)
    def openapi_document() -> JSONResponse:
        document: dict[str, Any] = app.openapi()
        return JSONResponse(document)

    @app.get("/docs", include_in_schema=False, dependencies=guarded)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} — docs")

    @app.get("/redoc", include_in_schema=False, dependencies=guarded)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} — ReDoc")

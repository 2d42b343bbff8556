"""The FastAPI application: routers, problem+json errors, metrics; one container per process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.api import problems
from services.api.container import Container, build_container
from services.api.observability import LatencyMiddleware
from services.api.openapi import document_problems
from services.api.routes import (
    admin,
    audit,
    auth,
    health,
    inbox,
    medications,
    orders,
    patients,
    pharmacy,
)


def create_app(container_factory: Callable[[], Container] = build_container) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.container = container_factory()
        try:
            yield
        finally:
            app.state.container.close()

    app = FastAPI(
        title="clinical-backbone API",
        version="1",
        description="Clinical commands into the event store; charts from the projections. "
        "Every read of patient data is audited.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(LatencyMiddleware)
    for router in (
        auth.router,
        patients.router,
        orders.router,
        medications.router,
        audit.router,
        admin.router,
        pharmacy.router,
        inbox.router,
        health.router,
    ):
        app.include_router(router)
    document_problems(app)
    return app

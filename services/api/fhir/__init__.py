"""The FHIR R4 endpoint at ``/fhir/R4``: the same authentication, roles, care-team and
break-glass rules, and read audit as ``/v1``; answers in ``application/fhir+json``, errors as
OperationOutcome.

Routers are included most specific first: ``Patient/$export`` and ``{type}/{id}/_history``
must be matched before ``{type}/{id}`` would take ``$export`` or ``_history`` for an id."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.fhir import audit_events, capability, export, history, resources, transactions
from services.api.fhir.responses import BASE_PATH

router = APIRouter(prefix=BASE_PATH, tags=["fhir"])
for part in (capability, export, transactions, audit_events, history, resources):
    router.include_router(part.router)
# POST /fhir/R4 is the base path itself, which an included router cannot carry.
transactions.install(router)

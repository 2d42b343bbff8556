"""GET /fhir/R4/metadata: the CapabilityStatement."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

"""POST /fhir/R4: transaction and batch Bundles turned into typed commands."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

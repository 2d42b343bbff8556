"""AuditEvent from the access log (compliance only)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

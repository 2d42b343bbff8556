"""Resource history from the store: _history and _history/{vid}, with Provenance."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

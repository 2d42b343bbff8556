"""Read and search of each resource type, and Patient/{id}/$everything."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

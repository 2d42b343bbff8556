"""Bulk Data export ($export), its status polling, files and cancel."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

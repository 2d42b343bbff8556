"""Shared fixtures: integration tests get the real local stack, brought up once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings, get_settings


@pytest.fixture(scope="session")
def settings() -> ServiceSettings:
    return get_settings()


@pytest.fixture(scope="session")
def stack(settings: ServiceSettings) -> Iterator[LocalStack]:
    """The real PostgreSQL and Kafka, started if they are not already (idempotent)."""
    local = LocalStack(settings)
    local.up()
    yield local

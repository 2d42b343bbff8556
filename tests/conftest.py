"""Shared fixtures: integration tests get the real local stack, brought up once per session.

Every test session is a deployment of its own on the shared Kafka cluster: its topics are
the contract's behind a prefix of its own (``BACKBONE_TOPIC_PREFIX``, set here before any
settings are read, so the processes the tests start inherit it), created with their ACLs
when the stack comes up and deleted with them when the session ends. A ``make run`` beside
the tests never sees their events, nor they its.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from services.local_stack.stack import LocalStack
from services.settings import ServiceSettings, get_settings

TOPIC_PREFIX = f"test-{uuid.uuid4().hex[:10]}."
os.environ["BACKBONE_TOPIC_PREFIX"] = TOPIC_PREFIX


@pytest.fixture(scope="session")
def settings() -> ServiceSettings:
    return get_settings()


@pytest.fixture(scope="session")
def stack(settings: ServiceSettings) -> Iterator[LocalStack]:
    """The real PostgreSQL and Kafka, started if they are not already (idempotent), with
    this session's topics and ACLs; those are removed at the end of the session."""
    local = LocalStack(settings)
    local.up()
    try:
        yield local
    finally:
        local.kafka.remove_deployment()

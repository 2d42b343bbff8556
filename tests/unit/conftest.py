"""Unit-test fixtures: an in-memory clinical store with a controllable clock."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from events.application import ClinicalStore
from events.commands.base import CommandContext
from events.commands.users import CreateUser
from events.domain.envelope import SYSTEM_ACTOR, Actor
from events.store.keys import Keyring, MemoryKeyStore


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


PHYSICIAN = Actor(user_id=UUID("00000000-0000-4000-8000-000000000001"), role="physician")
NURSE = Actor(user_id=UUID("00000000-0000-4000-8000-000000000002"), role="nurse")
LAB = Actor(user_id=UUID("00000000-0000-4000-8000-000000000003"), role="lab_tech")
ADMIN = Actor(user_id=UUID("00000000-0000-4000-8000-000000000004"), role="admin")


def ctx(actor: Actor = PHYSICIAN, **kwargs: object) -> CommandContext:
    return CommandContext(actor=actor, **kwargs)  # type: ignore[arg-type]


def memory_store(clock: FakeClock) -> ClinicalStore:
    master = secrets.token_bytes(32)
    keyring = Keyring(master, MemoryKeyStore())
    return ClinicalStore(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"}, keyring, master, clock=clock, new_id=uuid4
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> ClinicalStore:
    return memory_store(clock)


def account(store: ClinicalStore, username: str, role: str) -> UUID:
    """A user account in the store (care teams take only users that exist)."""
    return store.create_user(ctx(SYSTEM_ACTOR), CreateUser(username, username.title(), role)).id

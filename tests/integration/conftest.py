"""Integration fixtures: a fresh, isolated store (its own tables and master key) per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.application import ClinicalStore
from events.settings import StoreSettings
from events.store.keys import create_master_key
from events.store.verification import ChainVerifier, load_signing_key
from services.bootstrap import build_store, service_pool
from services.local_stack.stack import LocalStack


@pytest.fixture
def store_settings(stack: LocalStack, tmp_path: Path) -> StoreSettings:
    key_file = tmp_path / "master.key"
    create_master_key(key_file)
    return StoreSettings(
        master_key_file=key_file,
        store_name=f"t{uuid.uuid4().hex[:12]}",
        key_cache_ttl_s=0,
        witness_dir=tmp_path / "witness",
    )


@pytest.fixture
def pg_store(store_settings: StoreSettings) -> Iterator[ClinicalStore]:
    store = build_store(store_settings)
    yield store
    store.close()


@pytest.fixture
def verifier(
    pg_store: ClinicalStore, store_settings: StoreSettings, tmp_path: Path
) -> Iterator[ChainVerifier]:
    pool = service_pool(store_settings)
    yield pg_store.chain_verifier(pool, load_signing_key(tmp_path / "checkpoint.key"))
    pool.close()

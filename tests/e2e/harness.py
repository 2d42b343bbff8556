"""The real processes (API, relay, projections) on an isolated store, driven over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from events.commands.base import CommandContext
from events.domain.envelope import SYSTEM_ACTOR
from events.settings import StoreSettings
from events.store.keys import create_master_key
from projections.engine.database import read_pool
from projections.engine.service import start_at_end
from services.api.container import DEPARTMENT_TABLES, build_container
from services.local_stack.processes import api_healthy, free_port, wait_until
from services.settings import ServiceSettings
from tests.integration.projection_harness import isolated_settings

ROLES = (
    "front_desk",
    "nurse",
    "physician",
    "pharmacist",
    "lab_tech",
    "billing",
    "compliance",
    "admin",
)
PASSWORD = "correct horse battery staple"


@dataclass
class Backbone:
    """A running backbone: its URL, its users (one per role) and their ids."""

    url: str
    env: dict[str, str]
    tag: str
    users: dict[str, UUID] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def username(self, role: str) -> str:
        """Usernames are unique per run: lockouts are kept by username."""
        return f"e2e{self.tag}.{role}"

    def login(self, role: str, password: str = PASSWORD) -> httpx.Client:
        client = self.client()
        answer = client.post(
            "/v1/auth/token", data={"username": self.username(role), "password": password}
        )
        answer.raise_for_status()
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return client


@contextmanager
def running_backbone(
    tmp: Path, settings: ServiceSettings, idle_timeout_s: int
) -> Iterator[Backbone]:
    key_file = tmp / "master.key"
    create_master_key(key_file)
    store_settings = StoreSettings(master_key_file=key_file, store_name=f"e{uuid.uuid4().hex[:12]}")
    projection_settings = isolated_settings(store_settings)
    pool = read_pool(projection_settings)
    start_at_end(pool, projection_settings, DEPARTMENT_TABLES)
    pool.close()
    port = free_port()
    env = {
        **os.environ,
        "BACKBONE_STORE_NAME": store_settings.store_name,
        "BACKBONE_MASTER_KEY_FILE": str(key_file),
        "BACKBONE_READ_SCHEMA": projection_settings.read_schema,
        "BACKBONE_CONSUMER_GROUP_PREFIX": projection_settings.consumer_group_prefix,
        "BACKBONE_API_PORT": str(port),
        "BACKBONE_IDLE_TIMEOUT_S": str(idle_timeout_s),
        "BACKBONE_LOCKOUT_THRESHOLD": "5",
    }
    backbone = Backbone(f"http://127.0.0.1:{port}", env, uuid.uuid4().hex[:6])
    container = build_container(settings, store_settings, projection_settings)
    try:
        for role in ROLES:
            created = container.auth.create_user(
                CommandContext(actor=SYSTEM_ACTOR),
                backbone.username(role),
                f"E2E {role}",
                role,
                PASSWORD,
            )
            backbone.users[role] = created.id
    finally:
        container.close()
    logs = tmp / "logs"
    logs.mkdir()
    for name, argv in (
        ("relay", "relay"),
        ("projections", "project"),
        ("pharmacy", "pharmacy"),
        ("lab-routing", "lab-routing"),
        ("api", "serve"),
    ):
        with (logs / f"{name}.log").open("wb") as log:
            backbone.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "services.cli", argv],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        up = wait_until(lambda: api_healthy(backbone.url), 60, 0.2)
        assert up, (logs / "api.log").read_text()[-2000:]
        yield backbone
    finally:
        for process in backbone.processes:
            process.send_signal(signal.SIGTERM)
        for process in backbone.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def register_patient(client: httpx.Client, mrn: str) -> UUID:
    answer = client.post(
        "/v1/patients",
        json={
            "mrn": mrn,
            "family_name": "Testperson",
            "given_names": ["Eve"],
            "birth_date": "1975-05-05",
            "sex": "female",
        },
    )
    assert answer.status_code == 201, answer.text
    return UUID(answer.json()["id"])


def json_of(answer: httpx.Response) -> Any:
    return answer.json()

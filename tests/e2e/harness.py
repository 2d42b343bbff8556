"""The real processes (API, relay, projections) on an isolated store, driven over HTTP."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pyotp

from events.commands.base import CommandContext
from events.domain.envelope import SYSTEM_ACTOR
from events.settings import StoreSettings
from events.store.keys import create_master_key
from projections.engine.database import read_pool
from projections.engine.keyclient import KeyClient
from projections.engine.service import start_at_end
from services.api.container import DEPARTMENT_TABLES, build_container
from services.local_stack.processes import api_healthy, free_port, port_in_use, wait_until
from services.settings import ServiceSettings, get_settings
from services.tls import api_client_context
from tests.cli import migrated
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
SECOND_ADMIN = "second_admin"
# Prescription bodies the tests share (RxNorm ingredient codes).
METFORMIN = {
    "drug_code": "6809",
    "drug_name": "metformin",
    "dose": 500,
    "dose_unit": "mg",
    "route": "oral",
    "frequency": "bid",
}
AMOXICILLIN = {
    "drug_code": "723",
    "drug_name": "amoxicillin",
    "dose": 500,
    "dose_unit": "mg",
    "route": "oral",
    "frequency": "tid",
}


@dataclass
class Backbone:
    """A running backbone: its URL, its users (one per role) and their ids."""

    url: str
    env: dict[str, str]
    tag: str
    users: dict[str, UUID] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    totp_secrets: dict[str, str] = field(default_factory=dict)  # admin, compliance
    sessions: dict[tuple[str, str], str] = field(default_factory=dict)
    hl7_port: int = 0  # the MLLP listener (``backbone hl7``) of this backbone
    logs: Path | None = None

    def wait_for_hl7(self, timeout_s: float = 60) -> None:
        """Wait (bounded) until the HL7 listener accepts connections."""
        up = wait_until(lambda: port_in_use(self.hl7_port), timeout_s, 0.2)
        log = self.logs / "hl7.log" if self.logs is not None else None
        assert up, log.read_text()[-2000:] if log is not None and log.exists() else "hl7 down"

    @property
    def verify(self) -> ssl.SSLContext:
        """Verifies the API's certificate against the CA file (as every client does)."""
        return api_tls()

    @property
    def ca_file(self) -> Path:
        return get_settings().ca_file

    def key_client(self, principal: str = "operator") -> KeyClient:
        """A client of this backbone's key service, to open payloads read off Kafka."""
        tls = get_settings().tls_dir
        cert, key = tls / "clients" / f"{principal}.pem", tls / "clients" / f"{principal}.key"
        url = f"https://127.0.0.1:{self.env['BACKBONE_KEY_SERVICE_PORT']}"
        return KeyClient(url, self.ca_file, cert, key)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, verify=self.verify)

    def username(self, role: str) -> str:
        """Usernames are unique per run: lockouts are kept by username."""
        return f"e2e{self.tag}.{role}"

    def login(self, role: str, password: str = PASSWORD) -> httpx.Client:
        """A client logged in as the role's user. Admin and compliance send a TOTP code; a
        code is good once, so their session is reused while it lasts, and a fresh login
        waits (bounded) for the next code when this one was used already."""
        client = self.client()
        secret = self.totp_secrets.get(role)
        if secret is not None and (token := self.sessions.get((role, password))):
            client.headers["Authorization"] = f"Bearer {token}"
            if client.get("/v1/me").status_code == 200:
                return client
            del client.headers["Authorization"]
        form = {"username": self.username(role), "password": password}
        if secret is None:
            answer = client.post("/v1/auth/token", data=form)
        else:
            answer = client.post("/v1/auth/token", data={**form, "otp": current_code(secret)})
            if answer.status_code == 401:  # this step's code was used: wait for the next one
                step = int(time.time() // 30)
                wait_until(lambda: int(time.time() // 30) > step, 31, 0.2)
                answer = client.post("/v1/auth/token", data={**form, "otp": current_code(secret)})
        answer.raise_for_status()
        token = answer.json()["access_token"]
        if secret is not None:
            self.sessions[(role, password)] = token
        client.headers["Authorization"] = f"Bearer {token}"
        return client


@cache
def api_tls() -> ssl.SSLContext:
    """The TLS context of the API's clients in the tests: the CA file of the settings."""
    return api_client_context(get_settings())


def current_code(secret: str) -> str:
    """The TOTP code an authenticator app shows now."""
    return pyotp.TOTP(secret).now()


@contextmanager
def running_backbone(
    tmp: Path,
    settings: ServiceSettings,
    idle_timeout_s: int,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Backbone]:
    """Every process on a store and read schema of their own (``extra_env``: settings of
    the processes beside those)."""
    key_file = tmp / "master.key"
    create_master_key(key_file)
    store_settings = StoreSettings(
        master_key_file=key_file,
        store_name=f"e{uuid.uuid4().hex[:12]}",
        witness_dir=tmp / "witness",
    )
    projection_settings = isolated_settings(store_settings)
    pool = read_pool(projection_settings)
    start_at_end(pool, projection_settings, DEPARTMENT_TABLES)
    pool.close()
    port = free_port()
    hl7_port = free_port()
    env = {
        **os.environ,
        "BACKBONE_STORE_NAME": store_settings.store_name,
        "BACKBONE_MASTER_KEY_FILE": str(key_file),
        "BACKBONE_WITNESS_DIR": str(store_settings.witness_dir),
        "BACKBONE_READ_SCHEMA": projection_settings.read_schema,
        "BACKBONE_CONSUMER_GROUP_PREFIX": projection_settings.consumer_group_prefix,
        "BACKBONE_API_PORT": str(port),
        "BACKBONE_IDLE_TIMEOUT_S": str(idle_timeout_s),
        "BACKBONE_LOCKOUT_THRESHOLD": "5",
        "BACKBONE_API_SHUTDOWN_GRACE_S": "2",
        "BACKBONE_HL7_PORT": str(hl7_port),
        "BACKBONE_KEY_SERVICE_PORT": str(free_port()),  # payload keys of this store
        **(extra_env or {}),
    }
    backbone = Backbone(f"https://127.0.0.1:{port}", env, uuid.uuid4().hex[:6], hl7_port=hl7_port)
    container = build_container(settings, store_settings, projection_settings)
    try:
        # A second administrator, for what needs two people (privileged accounts, erasure).
        for name, role in (*((r, r) for r in ROLES), (SECOND_ADMIN, "admin")):
            created = container.auth.create_user(
                CommandContext(actor=SYSTEM_ACTOR),
                backbone.username(name),
                f"E2E {name}",
                role,
                PASSWORD,
            )
            backbone.users[name] = created.id
            if created.totp_secret is not None:  # generated for admin and compliance
                backbone.totp_secrets[name] = created.totp_secret
    finally:
        container.close()
    # As `backbone up` does: the services connect as their own roles, which make no tables.
    migrated(env)
    logs = tmp / "logs"
    logs.mkdir()
    backbone.logs = logs
    for name, argv in (
        ("keys", "keys serve"),
        ("relay", "relay"),
        ("projections", "project"),
        ("pharmacy", "pharmacy"),
        ("lab-routing", "lab-routing"),
        ("hl7", "hl7"),
        ("api", "serve"),
    ):
        with (logs / f"{name}.log").open("wb") as log:
            backbone.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "services.cli", *argv.split()],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        up = wait_until(lambda: api_healthy(backbone.url, backbone.verify), 60, 0.2)
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
    return registered_at(client, mrn)[0]


def registered_at(client: httpx.Client, mrn: str) -> tuple[UUID, int]:
    """Register a test patient: their id and the store position of the registration."""
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
    return UUID(answer.json()["id"]), int(answer.json()["position"])


def json_of(answer: httpx.Response) -> Any:
    return answer.json()


def join_care_team(backbone: Backbone, patient: UUID | str, *roles: str) -> None:
    """An administrator puts the users of these roles on the patient's care team (a
    clinician cannot add themself; already a member is fine)."""
    admin = backbone.login("admin")
    for role in roles:
        answer = admin.post(
            f"/v1/patients/{patient}/care-team", json={"user_id": str(backbone.users[role])}
        )
        assert answer.status_code == 201 or "already on the care team" in answer.text, answer.text


def written(answer: httpx.Response) -> dict[str, Any]:
    """The body of a write that must have answered 201."""
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def refused(answer: httpx.Response, status: int) -> str:
    """The detail of a problem+json answer that must have this status."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    detail: str = answer.json()["detail"]
    return detail


def chart_at(client: httpx.Client, patient: UUID | str, position: int) -> dict[str, Any]:
    """The chart once the projections have applied ``position`` (bounded wait)."""
    answers: list[httpx.Response] = []

    def ready() -> bool:
        answer = client.get(f"/v1/patients/{patient}/chart", params={"min_position": position})
        answers.append(answer)
        return answer.status_code != 503

    assert wait_until(ready, 30, 0.2), answers[-1].text
    assert answers[-1].status_code == 200, answers[-1].text
    body: dict[str, Any] = answers[-1].json()
    return body

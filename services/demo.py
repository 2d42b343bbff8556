"""``backbone demo``: one user per role, then a synthetic population through the HTTP API.

Users are named after their role (``physician``, ``nurse``, …); their passwords go to
``.data/demo/credentials.json`` (mode 0600). Patients are loaded with the same requests a
client sends, so the demo exercises the API, the store, the relay and the projections.
A second run keeps the users and skips patients already registered (409).
"""

from __future__ import annotations

import json
import os
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from events.domain.aggregates.users import DuplicateUsername
from events.domain.envelope import SYSTEM_ACTOR
from events.domain.payloads.access import ROLES
from events.store.application import CommandContext
from services.auth.service import AuthService

DRUGS = (
    {
        "drug_code": "29046",
        "drug_name": "lisinopril",
        "dose": 10,
        "dose_unit": "mg",
        "route": "oral",
        "frequency": "daily",
    },
    {
        "drug_code": "6809",
        "drug_name": "metformin",
        "dose": 500,
        "dose_unit": "mg",
        "route": "oral",
        "frequency": "bid",
    },
    {
        "drug_code": "83367",
        "drug_name": "atorvastatin",
        "dose": 20,
        "dose_unit": "mg",
        "route": "oral",
        "frequency": "at bedtime",
    },
    {
        "drug_code": "723",
        "drug_name": "amoxicillin",
        "dose": 500,
        "dose_unit": "mg",
        "route": "oral",
        "frequency": "tid",
    },
)
LABS = (
    ("2823-3", "Potassium", "mmol/L", 3.5, 5.1, (2.4, 7.2)),
    ("2345-7", "Glucose", "mg/dL", 70, 99, (35, 560)),
    ("718-7", "Hemoglobin", "g/dL", 12.0, 16.0, (6.0, 18.0)),
    ("2951-2", "Sodium", "mmol/L", 136, 145, (118, 162)),
)
FAMILY = (
    "Okafor",
    "Nguyen",
    "Schmidt",
    "Garcia",
    "Haddad",
    "Kowalski",
    "Mensah",
    "Tanaka",
    "Silva",
    "Novak",
)
GIVEN = ("Ada", "Ben", "Chloe", "Dmitri", "Esi", "Farah", "Goran", "Hana", "Ivo", "Jun")


def ensure_users(auth: AuthService, credentials_file: Path) -> dict[str, dict[str, str]]:
    """One user per role named after it; new passwords are written to ``credentials_file``."""
    known: dict[str, dict[str, str]] = (
        json.loads(credentials_file.read_text()) if credentials_file.exists() else {}
    )
    ctx = CommandContext(actor=SYSTEM_ACTOR, reason="demo setup")
    for role in ROLES:
        if role in known:
            continue
        password = secrets.token_urlsafe(18)
        try:
            auth.create_user(ctx, role, f"Demo {role.replace('_', ' ')}", role, password)
        except DuplicateUsername as exists:  # credentials file lost: give a new password
            auth.set_password(exists.existing_id, password)
        known[role] = {"password": password, "role": role}
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(known, handle, indent=2)
    return known


@dataclass
class DemoReport:
    """How the load went."""

    patients: int = 0
    skipped: int = 0
    requests: int = 0


class DemoClient:
    """Logged-in HTTP clients per role."""

    def __init__(self, url: str, credentials: dict[str, dict[str, str]]) -> None:
        self.url = url
        self.credentials = credentials
        self._clients: dict[str, httpx.Client] = {}
        self.requests = 0

    def as_(self, role: str) -> httpx.Client:
        if role not in self._clients:
            client = httpx.Client(base_url=self.url, timeout=30)
            token = client.post(
                "/v1/auth/token",
                data={"username": role, "password": self.credentials[role]["password"]},
            )
            token.raise_for_status()
            client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            self._clients[role] = client
        return self._clients[role]

    def post(self, role: str, path: str, body: dict[str, Any], ok: tuple[int, ...] = (201,)) -> Any:
        self.requests += 1
        answer = self.as_(role).post(path, json=body)
        if answer.status_code not in ok:
            raise RuntimeError(f"POST {path} as {role}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def load_population(
    client: DemoClient, patients: int, seed: int = 2026, advance: Callable[[], None] | None = None
) -> DemoReport:
    """Register ``patients`` patients and give each a stay, through the API."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    report = DemoReport()
    team = [_user_id(client, role) for role in ("physician", "nurse", "pharmacist")]
    for i in range(patients):
        registered = client.as_("front_desk").post(
            "/v1/patients",
            json={
                "mrn": f"DEMO-{i + 1:06d}",
                "family_name": rng.choice(FAMILY),
                "given_names": [rng.choice(GIVEN)],
                "sex": rng.choice(("female", "male")),
                "birth_date": _birth_date(rng),
            },
        )
        client.requests += 1
        if registered.status_code == 409:
            report.skipped += 1
        else:
            if registered.status_code != 201:
                raise RuntimeError(
                    f"registration failed: {registered.status_code} {registered.text[:300]}"
                )
            _stay(client, rng, registered.json()["id"], team, i)
            report.patients += 1
        if advance is not None:
            advance()
    report.requests = client.requests
    return report


def _birth_date(rng: random.Random) -> str:
    return f"{rng.randrange(1935, 2010)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"


def _user_id(client: DemoClient, role: str) -> str:
    return str(client.as_(role).get("/v1/me").json()["user_id"])


def _stay(client: DemoClient, rng: random.Random, patient: str, team: list[str], i: int) -> None:
    base = f"/v1/patients/{patient}"
    for user_id in team:
        client.post("physician", f"{base}/care-team", {"user_id": user_id})
    if i % 4 == 0:
        client.post(
            "nurse",
            f"{base}/allergies",
            {"substance": "penicillin", "reaction": "hives", "severity": "moderate"},
        )
    for _ in range(2):
        client.post(
            "nurse",
            f"{base}/vitals",
            {
                "heart_rate": rng.randrange(55, 125),
                "systolic_bp": rng.randrange(100, 165),
                "diastolic_bp": rng.randrange(60, 95),
                "temperature_c": round(rng.uniform(36.2, 38.6), 1),
                "respiratory_rate": rng.randrange(12, 24),
                "spo2": rng.randrange(91, 100),
            },
        )
    code, name, unit, low, high, (lowest, highest) = LABS[i % len(LABS)]
    order = client.post(
        "physician",
        f"{base}/orders",
        {
            "test_code": code,
            "test_name": name,
            "priority": rng.choice(("routine", "urgent", "stat")),
        },
    )
    if i % 10 != 9:
        client.post("nurse", f"/v1/orders/{order['id']}/specimen", {})
        for _ in range(1 + i % 2):
            value = round(rng.uniform(lowest, highest), 1)
            client.post(
                "lab_tech",
                f"/v1/orders/{order['id']}/results",
                {
                    "results": [
                        {
                            "code": code,
                            "name": name,
                            "value": value,
                            "unit": unit,
                            "reference_low": low,
                            "reference_high": high,
                        }
                    ]
                },
            )
    drug = DRUGS[i % len(DRUGS)]
    if drug["drug_name"] == "amoxicillin" and i % 4 == 0:
        drug = {
            **drug,
            "override_reason": "tolerated amoxicillin before; infectious disease consult",
        }
    medication = client.post("physician", f"{base}/medications", drug)
    client.post(
        "nurse", f"/v1/medications/{medication['id']}/administrations", {"dose": drug["dose"]}
    )
    if i % 3 == 0:
        client.post(
            "physician",
            f"/v1/medications/{medication['id']}/change",
            {"frequency": "bid", "reason": "review on ward round"},
        )
    if i % 5 == 0:
        client.post(
            "physician",
            f"/v1/medications/{medication['id']}/discontinue",
            {"reason": "course complete"},
        )

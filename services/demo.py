"""``backbone demo``: one user per role, then a synthetic population through the HTTP API.

Users are named after their role (``physician``, ``nurse``, …); their passwords (and, for
admin and compliance, their TOTP secrets) go to ``.data/demo/credentials.json`` (mode 0600).
Patients are loaded with the same requests a client sends, so the demo exercises the API,
the store, the relay and the projections; the people and values come from
``services.synthetic``, turned into request bodies.
A second run keeps the users and skips patients already registered (409).
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from events.commands.base import CommandContext
from events.domain.aggregates.users import DuplicateUsername
from events.domain.envelope import SYSTEM_ACTOR
from events.domain.payloads.access import ROLES
from services.auth import totp
from services.auth.service import AuthService
from services.synthetic import (
    AMOXICILLIN,
    DEFAULT_SEED,
    DRUGS,
    LABS,
    PENICILLIN,
    Synthetic,
    http_body,
)

OVERRIDE = "tolerated amoxicillin before; infectious disease consult"
URGENT_FIRST_DOSE = "first dose before verification (urgent)"


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
        totp_secret: str | None = None
        try:
            created = auth.create_user(ctx, role, f"Demo {role.replace('_', ' ')}", role, password)
            totp_secret = created.totp_secret
        except DuplicateUsername as exists:  # credentials file lost: give a new password
            auth.set_password(exists.existing_id, password)
            if role in totp.MFA_ROLES:
                totp_secret = auth.reset_totp(exists.existing_id)
        known[role] = {"password": password, "role": role}
        if totp_secret is not None:  # admin and compliance log in with a TOTP code
            known[role]["totp_secret"] = totp_secret
    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(known, handle, indent=2)
    return known


# The demo's own administrator for its care-team changes: the admin and compliance users
# a person logs in as must find their current TOTP code unused (a code works once).
LOADER = "demo.loader"


def ensure_loader(auth: AuthService) -> dict[str, str]:
    """The loader account with a fresh password and secret for this run (never written)."""
    ctx = CommandContext(actor=SYSTEM_ACTOR, reason="demo setup")
    password = secrets.token_urlsafe(18)
    try:
        loader = auth.create_user(ctx, LOADER, "Demo loader", "admin", password).id
    except DuplicateUsername as exists:
        loader = exists.existing_id
        auth.set_password(loader, password)
    return {"password": password, "role": "admin", "totp_secret": auth.reset_totp(loader)}


@dataclass
class DemoReport:
    """How the load went."""

    patients: int = 0
    skipped: int = 0
    requests: int = 0


class DemoClient:
    """Logged-in HTTPS clients per role, verifying the API with ``verify`` (the CA's)."""

    def __init__(
        self, url: str, credentials: dict[str, dict[str, str]], verify: ssl.SSLContext | bool
    ) -> None:
        self.url = url
        self.credentials = credentials
        self.verify = verify
        self._clients: dict[str, httpx.Client] = {}
        self.requests = 0

    def as_(self, role: str) -> httpx.Client:
        if role not in self._clients:
            client = httpx.Client(base_url=self.url, timeout=30, verify=self.verify)
            form = {"username": role, "password": self.credentials[role]["password"]}
            secret = self.credentials[role].get("totp_secret")
            if secret:
                form["otp"] = totp.code_at(secret, time.time())
            token = client.post("/v1/auth/token", data=form)
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
    client: DemoClient,
    patients: int,
    seed: int = DEFAULT_SEED,
    advance: Callable[[], None] | None = None,
) -> DemoReport:
    """Register ``patients`` patients and give each a stay, through the API."""
    people = Synthetic(seed, mrn_prefix="DEMO-", first_number=1)
    report = DemoReport()
    team = [_user_id(client, role) for role in ("physician", "nurse", "pharmacist")]
    for i in range(patients):
        registered = client.as_("front_desk").post(
            "/v1/patients", json=http_body(people.registration(i))
        )
        client.requests += 1
        if registered.status_code == 409:
            report.skipped += 1
        else:
            if registered.status_code != 201:
                raise RuntimeError(
                    f"registration failed: {registered.status_code} {registered.text[:300]}"
                )
            _stay(client, people, UUID(registered.json()["id"]), team, i)
            report.patients += 1
        if advance is not None:
            advance()
    report.requests = client.requests
    return report


def _user_id(client: DemoClient, role: str) -> str:
    return str(client.as_(role).get("/v1/me").json()["user_id"])


def _stay(client: DemoClient, people: Synthetic, patient: UUID, team: list[str], i: int) -> None:
    base = f"/v1/patients/{patient}"
    for user_id in team:
        client.post(LOADER, f"{base}/care-team", {"user_id": user_id})
    allergic = i % 4 == 0
    if allergic:
        client.post("nurse", f"{base}/allergies", http_body(people.allergy(patient, PENICILLIN)))
    for _ in range(2):
        client.post("nurse", f"{base}/vitals", http_body(people.vitals(patient)))
    test = LABS[i % len(LABS)]
    order = client.post("physician", f"{base}/orders", http_body(people.order(patient, test)))
    if i % 10 != 9:
        order_id = UUID(order["id"])
        client.post("nurse", f"/v1/orders/{order_id}/specimen", {})
        for _ in range(1 + i % 2):
            results = http_body(people.results(order_id, test))
            client.post("lab_tech", f"/v1/orders/{order_id}/results", results)
    drug = DRUGS[i % len(DRUGS)]
    override = OVERRIDE if allergic and drug is AMOXICILLIN else None
    medication = client.post(
        "physician", f"{base}/medications", http_body(drug.prescribe(patient, override))
    )
    # An urgent first dose, given before pharmacy verifies the order: it needs a reason.
    client.post(
        "nurse",
        f"/v1/medications/{medication['id']}/administrations",
        {"dose": drug.dose, "override_reason": URGENT_FIRST_DOSE},
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

"""A PostgreSQL role per service, and what each may do.

The database's owner (``backbone``) is the migration role: ``backbone migrate`` (run by
``backbone up`` before anything starts) creates every table as it, and the operator's
commands (verify, backup, restore, rebuild, keys rotate) connect as it. The long-running
services connect as their own login role and never run DDL (``events/store/migrating.py``):

- the store's writers (API, HL7 listener) may SELECT and INSERT the permanent record, never
  DELETE or TRUNCATE it; UPDATE is granted on the events table alone because PostgreSQL 15
  allows ``LOCK TABLE ... IN EXCLUSIVE MODE`` (how the event store serialises its positions)
  only with UPDATE, DELETE or TRUNCATE, and the INSERT-only trigger refuses every UPDATE;
- the relay reads the store and writes only its checkpoint and the signed chain checkpoints;
- the key service reads the wrapped keys and appends its audit of key fetches;
- the projections' role owns the read schema and nothing else, with no privilege on the
  store; the departments' role writes its own read tables; the API reads the read schema.

None of them owns a table of the store, so none can drop or disable the INSERT-only
triggers. Passwords are random, made by ``backbone infra up`` into a 0600 file
(``BACKBONE_DATABASE_ROLES_FILE``); an operator with their own cluster gives each process
its URL (``BACKBONE_DATABASE_URL``) and turns the local roles off
(``BACKBONE_DATABASE_SERVICE_ROLES=false``).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo


@dataclass(frozen=True)
class ServiceRole:
    """One service's login role."""

    service: str
    role: str
    purpose: str


API = ServiceRole("api", "backbone_api", "the clinical API: writes events, reads the read schema")
HL7 = ServiceRole("hl7", "backbone_hl7", "the HL7 v2 listener: writes events, its ledger")
RELAY = ServiceRole("relay", "backbone_relay", "the relay: reads the store, its checkpoints")
KEYS = ServiceRole("keys", "backbone_keys", "the key service: reads keys, audits fetches")
PROJECTIONS = ServiceRole(
    "projections", "backbone_projections", "the projections: own the read schema, no store"
)
DEPARTMENTS = ServiceRole(
    "departments", "backbone_departments", "pharmacy and lab routing: their read tables"
)
SERVICE_ROLES: tuple[ServiceRole, ...] = (API, HL7, RELAY, KEYS, PROJECTIONS, DEPARTMENTS)


class RolesNotProvisioned(RuntimeError):
    """A service was to connect as its role, but the roles were never made here."""


def service_role(service: str) -> ServiceRole:
    """The role of ``service`` (ValueError naming the known ones otherwise)."""
    for role in SERVICE_ROLES:
        if role.service == service:
            return role
    known = ", ".join(r.service for r in SERVICE_ROLES)
    raise ValueError(f"no database role for service {service!r}; known: {known}")


def ensure_passwords(path: Path) -> dict[str, str]:
    """Each role's password, made once (random, 0600) and read back after that."""
    passwords = read_passwords(path) if path.exists() else {}
    missing = [r.role for r in SERVICE_ROLES if r.role not in passwords]
    if missing:
        passwords.update({role: secrets.token_urlsafe(24) for role in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(passwords, out, indent=2)
        path.with_suffix(".tmp").replace(path)
    return passwords


def read_passwords(path: Path) -> dict[str, str]:
    """The passwords file as written by ``ensure_passwords``."""
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise RolesNotProvisioned(
            f"{path} is missing: run `backbone infra up` (it makes the services' database "
            "roles), or set BACKBONE_DATABASE_SERVICE_ROLES=false and give this process "
            "its own BACKBONE_DATABASE_URL"
        ) from exc
    return {str(k): str(v) for k, v in loaded.items()}


def as_role(url: str, role: ServiceRole, password: str) -> str:
    """``url`` (a URL or key=value conninfo) connecting as ``role`` instead."""
    info = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    info.update(user=role.role, password=password)
    return make_conninfo("", **info)

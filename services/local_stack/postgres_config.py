"""What the local cluster is configured with, as text: our block of ``postgresql.conf``, the
whole ``pg_hba.conf`` and the SQL that makes our roles and database.

All of it is rewritten on every start, so a cluster made by an earlier version (``trust``
on the local socket, no TLS) comes up TLS-only with SCRAM passwords, its data untouched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from psycopg import sql

from events.store.insert_only import MAINTENANCE_ROLE
from services.database_roles import PROJECTIONS

# Everything from this line to the end of postgresql.conf is ours (earlier versions
# appended the same marker), cut and written again on every start.
MARKER = "# clinical-backbone local cluster"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
SCRAM_ITERATIONS = 4096

# No ``trust`` and no plaintext ``host`` line: the postgres OS user administers over the
# socket (peer), everyone else comes over TLS with a SCRAM password.
PG_HBA = """\
# clinical-backbone: rewritten by `backbone infra up` on every start; edits are lost.
# TYPE   DATABASE  USER      ADDRESS        METHOD
local    all       postgres                 peer
hostssl  all       all       127.0.0.1/32   scram-sha-256
hostssl  all       all       ::1/128        scram-sha-256
"""


def _quoted(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def conf_block(port: int, socket_dir: Path, data_dir: Path) -> str:
    """Our settings: the port, loopback only, TLS 1.2 or later, SCRAM for new passwords."""
    lines = [
        MARKER + " (rewritten on every start by `backbone infra up`)",
        f"port = {port}",
        "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = {_quoted(socket_dir)}",
        "max_connections = 200",
        "shared_buffers = 256MB",
        "password_encryption = scram-sha-256",
        "ssl = on",
        f"ssl_cert_file = {_quoted(data_dir / SERVER_CERT)}",
        f"ssl_key_file = {_quoted(data_dir / SERVER_KEY)}",
        "ssl_min_protocol_version = 'TLSv1.2'",
    ]
    return "\n".join(lines) + "\n"


def with_block(conf: str, block: str) -> str:
    """``postgresql.conf`` with our block (and only one) at its end."""
    kept = conf.split("\n" + MARKER, 1)[0] if ("\n" + MARKER) in conf else conf
    if kept.startswith(MARKER):
        kept = ""
    return kept.rstrip("\n") + "\n\n" + block


def scram_verifier(password: str, salt: bytes | None = None) -> str | None:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677), so
    the password itself never reaches the server's log; None for a non-ASCII password,
    whose SASLprep normalisation is left to the server."""
    if not password.isascii():
        return None
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored)}:{b64(server)}"


def roles_script(
    user: str, password: str, database: str, services: dict[str, str] | None = None
) -> str:
    """psql input, run as the postgres OS user: our login role with a SCRAM password (set
    again each time, so an md5 password from an old cluster is replaced), the NOLOGIN
    maintenance role granted to it, our database, and each service's login role with its
    password (``services``: role → password). Idempotent."""
    role, maintenance = sql.Identifier(user), sql.Identifier(MAINTENANCE_ROLE)
    secret = sql.Literal(scram_verifier(password) or password)

    def exists(table: str, column: str, name: str) -> sql.Composed:
        return sql.SQL("SELECT 1 FROM {} WHERE {} = {}").format(
            sql.Identifier(table), sql.Identifier(column), sql.Literal(name)
        )

    statements = [
        sql.SQL("SET password_encryption = 'scram-sha-256'"),
        sql.SQL("SELECT {} WHERE NOT EXISTS ({}) \\gexec").format(
            sql.Literal(sql.SQL("CREATE ROLE {} LOGIN").format(role).as_string()),
            exists("pg_roles", "rolname", user),
        ),
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(role, secret),
        sql.SQL("SELECT {} WHERE NOT EXISTS ({}) \\gexec").format(
            sql.Literal(sql.SQL("CREATE ROLE {} NOLOGIN").format(maintenance).as_string()),
            exists("pg_roles", "rolname", MAINTENANCE_ROLE),
        ),
        sql.SQL("ALTER ROLE {} WITH NOLOGIN").format(maintenance),
        # Membership lets our role SET ROLE to it deliberately; the triggers refuse
        # everyone whose current role is not it.
        sql.SQL("GRANT {} TO {}").format(maintenance, role),
        *_service_roles(user, services or {}),
        sql.SQL("SELECT {} WHERE NOT EXISTS ({}) \\gexec").format(
            sql.Literal(
                sql.SQL("CREATE DATABASE {} OWNER {}")
                .format(sql.Identifier(database), role)
                .as_string()
            ),
            exists("pg_database", "datname", database),
        ),
    ]
    lines = [s.as_string() for s in statements]
    return "\n".join(line if line.endswith("\\gexec") else line + ";" for line in lines) + "\n"


def _service_roles(owner: str, services: dict[str, str]) -> list[sql.Composed]:
    """Each service's login role, its password set again; the owner may act as the
    projections' role (it hands the read schema to it and creates the read tables as it)."""
    statements: list[sql.Composed] = []
    for name, password in sorted(services.items()):
        role = sql.Identifier(name)
        create = sql.Literal(sql.SQL("CREATE ROLE {} LOGIN").format(role).as_string())
        exists = sql.SQL("SELECT 1 FROM pg_roles WHERE rolname = {}").format(sql.Literal(name))
        secret = sql.Literal(scram_verifier(password) or password)
        statements += [
            sql.SQL("SELECT {} WHERE NOT EXISTS ({}) \\gexec").format(create, exists),
            sql.SQL(
                "ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
            ).format(role, secret),
        ]
        if name == PROJECTIONS.role:
            statements.append(sql.SQL("GRANT {} TO {}").format(role, sql.Identifier(owner)))
    return statements

"""The project-local PostgreSQL cluster under ``.data/postgres``, run as the ``postgres`` user.

Debian's ``postgresql`` package provides the binaries (``make setup`` installs it);
this module creates the cluster once, starts and stops it on our own port, and creates
our role and database.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from services.local_stack.errors import InfraError
from services.local_stack.processes import port_in_use, run
from services.settings import ServiceSettings

PG_BIN_ROOT = Path("/usr/lib/postgresql")
OWNER = "postgres"


@dataclass(frozen=True)
class Health:
    """One component's health as ``status`` reports it."""

    name: str
    address: str
    up: bool
    detail: str = ""


def find_bin_dir() -> Path:
    """The newest installed PostgreSQL server's bin directory."""
    candidates = sorted(
        (p for p in PG_BIN_ROOT.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise InfraError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql. "
            "Run `make setup` (it installs Debian's postgresql package)."
        )
    return candidates[-1]


class LocalPostgres:
    """Controls the local cluster: create once, start, stop, check."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.data_dir = settings.postgres_dir
        self.socket_dir = settings.data_dir / "postgres-run"
        self.log_file = self.data_dir / "server.log"

    @property
    def port(self) -> int:
        return self.settings.postgres_port

    # -- running commands as the cluster owner ---------------------------------------------
    def _as_owner(self, *cmd: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", OWNER, "--", *cmd]
        return list(cmd)

    def _chown_to_owner(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(OWNER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- lifecycle -------------------------------------------------------------------------
    def ensure_cluster(self) -> bool:
        """Create the cluster if there is none; True when it was created now."""
        bin_dir = find_bin_dir()
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(OWNER)
            except KeyError as exc:
                raise InfraError("The `postgres` user does not exist; run `make setup`.") from exc
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown_to_owner(self.socket_dir)
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            self._check_not_corrupt(bin_dir)
            return False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._chown_to_owner(self.data_dir)
        run(
            self._as_owner(
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                OWNER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ),
            "initdb",
        )
        settings_block = "\n".join(
            [
                "",
                "# clinical-backbone local cluster",
                f"port = {self.port}",
                "listen_addresses = '127.0.0.1'",
                f"unix_socket_directories = '{self.socket_dir}'",
                "max_connections = 200",
                "shared_buffers = 256MB",
                "password_encryption = scram-sha-256",
                "",
            ]
        )
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write(settings_block)
        return True

    def _check_not_corrupt(self, bin_dir: Path) -> None:
        version_file = self.data_dir / "PG_VERSION"
        if not version_file.exists():
            raise InfraError(
                f"{self.data_dir} exists but holds no PostgreSQL cluster (PG_VERSION missing): "
                "a previous cluster is corrupt or was only half created. "
                f"Move it away or delete it (rm -rf {self.data_dir}) and run `backbone infra up`."
            )
        cluster_version = version_file.read_text().strip()
        if cluster_version != bin_dir.parent.name:
            raise InfraError(
                f"The cluster in {self.data_dir} is PostgreSQL {cluster_version} but the "
                f"installed server is {bin_dir.parent.name}. Delete the cluster or install "
                f"postgresql-{cluster_version}."
            )
        try:
            run(self._as_owner(str(bin_dir / "pg_controldata"), str(self.data_dir)), "check")
        except InfraError as exc:
            raise InfraError(
                f"The cluster in {self.data_dir} is corrupt (pg_controldata fails): {exc}. "
                f"Move it away or delete it and run `backbone infra up`."
            ) from exc

    def is_running(self) -> bool:
        bin_dir = find_bin_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        cmd = self._as_owner(str(bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir))
        try:
            run(cmd, "pg_ctl status")
        except InfraError:
            return False
        return True

    def start(self) -> bool:
        """Start the cluster if it is not running; True when it was started now."""
        self.ensure_cluster()
        if self.is_running():
            return False
        if port_in_use(self.port):
            raise InfraError(
                f"Port {self.port} is taken by another process, so PostgreSQL cannot start. "
                "Stop that process or set BACKBONE_POSTGRES_PORT (and BACKBONE_DATABASE_URL)."
            )
        bin_dir = find_bin_dir()
        try:
            run(
                self._as_owner(
                    str(bin_dir / "pg_ctl"),
                    "start",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "60",
                ),
                "PostgreSQL start",
            )
        except InfraError as exc:
            raise InfraError(
                f"{exc}\nServer log ({self.log_file}) says:\n{self._log_tail()}"
            ) from exc
        return True

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except (FileNotFoundError, PermissionError):
            return "(no log)"
        return "\n".join(lines[-10:])

    def stop(self) -> bool:
        if not self.is_running():
            return False
        run(
            self._as_owner(
                str(find_bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"
            ),
            "PostgreSQL stop",
        )
        return True

    def ensure_database(self) -> None:
        """Create our role and database (idempotent) over the owner's local socket."""
        s = self.settings
        with psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=OWNER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            role_exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (s.postgres_user,)
            ).fetchone()
            if role_exists is None:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(s.postgres_user), sql.Literal(s.postgres_password)
                    )
                )
            db_exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (s.postgres_db,)
            ).fetchone()
            if db_exists is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(s.postgres_db), sql.Identifier(s.postgres_user)
                    )
                )

    def health(self) -> Health:
        address = redact_url(self.settings.database_url)
        try:
            with psycopg.connect(self.settings.database_url, connect_timeout=3) as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            return Health("postgresql", address, False, type(exc).__name__)
        return Health("postgresql", address, True, "answers queries")


def redact_url(url: str) -> str:
    """The URL with its password replaced, for status output."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"

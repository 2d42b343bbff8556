"""The project-local PostgreSQL cluster under ``.data/postgres``, run as the ``postgres`` user.

Debian's ``postgresql`` package provides the binaries (``make setup`` installs it);
this module creates the cluster once, starts and stops it on our own port, and creates
our roles and database. It serves TLS only (the local CA's server certificate, or the
operator's), SCRAM passwords, no ``trust``: the configuration is written again before each
start (``services.local_stack.postgres_config``), so older clusters switch over in place.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from services.database_roles import ensure_passwords
from services.local_stack import postgres_config
from services.local_stack.certificates import Authority, ensure_certificates
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

    def _write_owned(self, path: Path, text: str | bytes, mode: int) -> None:
        """Write a file of the cluster, owned by the cluster's owner, with ``mode``."""
        data = text.encode() if isinstance(text, str) else text
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        os.chmod(path, mode)
        self._chown_to_owner(path)

    def admin(self, script: str) -> str:
        """Run psql ``script`` (on stdin, never on a command line) as the postgres OS user
        over the local socket (peer authentication); its output, unaligned."""
        psql = str(find_bin_dir() / "psql")
        cmd = self._as_owner(
            psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
            "-p", str(self.port), "-U", OWNER, "-d", "postgres",
        )  # fmt: skip
        done = subprocess.run(cmd, input=script, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            # psql's own message only: the script may hold a password verifier.
            errors = [
                line for line in done.stderr.splitlines() if "ERROR" in line or "FATAL" in line
            ]
            raise InfraError(f"PostgreSQL administration failed: {'; '.join(errors)[:500]}")
        return done.stdout

    # -- TLS and authentication ------------------------------------------------------------
    def server_certificate(self) -> tuple[Path, Path]:
        """The server's certificate (chain) and key: the operator's, or the local CA's (made
        now if missing)."""
        s = self.settings
        if s.postgres_server_cert_file is not None or s.postgres_server_key_file is not None:
            if s.postgres_server_cert_file is None or s.postgres_server_key_file is None:
                raise InfraError(
                    "set both BACKBONE_POSTGRES_SERVER_CERT_FILE and "
                    "BACKBONE_POSTGRES_SERVER_KEY_FILE, or neither"
                )
            pair = (s.postgres_server_cert_file, s.postgres_server_key_file)
        else:
            ensure_certificates(s.tls_dir, ())
            server = Authority(s.tls_dir).server
            pair = (server.cert, server.key)
        missing = [str(p) for p in pair if not p.is_file()]
        if missing:
            raise InfraError(f"PostgreSQL's TLS files are missing: {', '.join(missing)}")
        return pair

    def configure(self) -> None:
        """Write our settings, pg_hba.conf and the TLS files into the cluster (idempotent):
        TLS only, SCRAM only, peer for the postgres OS user, no trust."""
        cert, key = self.server_certificate()
        # PostgreSQL refuses a key others can read: a copy owned by postgres, 0600.
        self._write_owned(self.data_dir / postgres_config.SERVER_KEY, key.read_bytes(), 0o600)
        self._write_owned(self.data_dir / postgres_config.SERVER_CERT, cert.read_bytes(), 0o644)
        conf = self.data_dir / "postgresql.conf"
        block = postgres_config.conf_block(self.port, self.socket_dir, self.data_dir)
        text = postgres_config.with_block(conf.read_text(), block)
        self._write_owned(conf, text, 0o600)
        self._write_owned(self.data_dir / "pg_hba.conf", postgres_config.PG_HBA, 0o600)

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
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ),
            "initdb",
        )
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
        self.configure()
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
        """Create our role (its password set again, as SCRAM), the maintenance role, the
        services' roles and our database (idempotent), as the postgres OS user over the
        local socket."""
        s = self.settings
        services = ensure_passwords(s.roles_file) if s.database_service_roles else None
        self.admin(
            postgres_config.roles_script(
                s.postgres_user, s.postgres_password, s.postgres_db, services
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

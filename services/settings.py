"""Settings of the services package, read from ``BACKBONE_*`` environment variables.

Defaults work with ``backbone infra up`` on a developer machine; outside development,
placeholder secrets are refused.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from events.settings import DatabaseSettings, TopicSettings
from projections.engine.kafka_clients import SecurityProtocol

REPO_ROOT = Path(__file__).resolve().parent.parent
RETENTION_YEARS: dict[str, float] = {
    "patients": 10.0,
    "orders": 10.0,
    "results": 10.0,
    "medications": 10.0,
    "observations": 10.0,
    "access": 6.0,
}
DEVELOPMENT_DB_PASSWORD = "backbone"  # noqa: S105 - refused outside development
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class ServiceSettings(DatabaseSettings, TopicSettings):
    """Where the local infrastructure lives and how the processes reach it."""

    model_config = SettingsConfigDict(env_prefix="BACKBONE_", extra="ignore")

    environment: str = "development"
    data_dir: Path = REPO_ROOT / ".data"
    # The local CA, the servers' certificate and each principal's client certificate
    # (``backbone certs init``).
    tls_dir: Path = REPO_ROOT / ".data" / "tls"
    # The CA every client verifies the servers with (None: the local CA's, in tls_dir).
    tls_ca_file: Path | None = None
    infra_dir: Path = REPO_ROOT / "infra"

    # database_url (DatabaseSettings): verify-full against database_ca_file or the CA.
    postgres_port: int = 55432
    postgres_db: str = "backbone"
    postgres_user: str = "backbone"
    postgres_password: str = "backbone"  # noqa: S105 - development default, refused elsewhere
    # A PostgreSQL role per service (services/database_roles.py): the long-running services
    # connect as theirs, with its password from this 0600 file (None: .data/keys/), made by
    # `backbone infra up`. False: every process uses database_url as given.
    database_service_roles: bool = True
    database_roles_file: Path | None = None
    # The local cluster's certificate (its chain) and key (None: the local CA's server files).
    postgres_server_cert_file: Path | None = None
    postgres_server_key_file: Path | None = None

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    kafka_start_timeout_s: float = 90.0
    # Kafka over TLS only, clients authenticated by certificate (the certificate's CN is the
    # principal, services/principals.py; projections/engine/kafka_clients.py builds clients).
    # PLAINTEXT is a development option, refused elsewhere.
    kafka_security_protocol: SecurityProtocol = "SSL"
    # Who this process is on Kafka (None: the process's own default, operator for tools).
    kafka_principal: str | None = None
    # An operator's own PKI (None: the local CA's files in tls_dir): the CA Kafka clients and
    # the broker trust, this process's client certificate and key, the broker's certificate
    # (its chain) and PKCS#8 key.
    kafka_ca_file: Path | None = None
    kafka_cert_file: Path | None = None
    kafka_key_file: Path | None = None
    kafka_check_hostname: bool = True
    kafka_server_cert_file: Path | None = None
    kafka_server_key_file: Path | None = None

    log_level: str = Field(default="INFO")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # On SIGTERM, how long requests in flight may finish. Past it the API stops anyway: an
    # idle TLS keep-alive connection would otherwise hold shutdown until the client goes.
    api_shutdown_grace_s: int = Field(default=10, ge=1)
    token_ttl_s: int = 3600
    idle_timeout_s: int = 15 * 60
    lockout_threshold: int = 5
    lockout_window_s: int = 15 * 60
    lockout_duration_s: int = 15 * 60
    # Login throttling (services/auth/throttle.py): from lockout_threshold failures of one
    # (username, client address) within lockout_window_s, that pair waits base · 2^k seconds
    # (at most lockout_duration_s); one address may try login_address_limit times per window.
    login_delay_base_s: float = Field(default=30.0, gt=0)
    login_address_limit: int = Field(default=30, ge=1)
    # Proxies whose X-Forwarded-For names the client (JSON list of IP addresses).
    trusted_proxies: list[str] = Field(default_factory=list)
    break_glass_minutes: int = 60
    read_wait_timeout_s: float = 2.0
    bulk_read_patients_per_hour: int = 50
    working_hours_start: int = 7
    working_hours_end: int = 19
    working_hours_tz: str = "UTC"
    ready_max_projection_lag: int = 1000

    # HTTP hardening (services/api/middleware.py, services/api/guards.py).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)  # 413 past this, never buffered
    # /docs, /redoc and /openapi.json without a token: None means "only in development".
    public_docs: bool | None = None
    # /metrics: an admin or compliance bearer token, or this scrape token (32+ characters).
    metrics_token: str | None = None
    # HTTPS with this certificate and key (None: the local CA's server files in tls_dir); HSTS
    # follows. False serves plain HTTP, only behind a TLS-terminating proxy on this host.
    api_tls: bool = True
    api_tls_cert_file: Path | None = None
    api_tls_key_file: Path | None = None
    rate_limit_search: str = "60/minute"  # per user, `limits` notation
    rate_limit_break_glass: str = "10/hour"
    rate_limit_exports: str = "30/minute"  # history, access log, alerts, replayed charts
    # Denied requests recorded as events per client address; past it they are counted in a log
    # line, so a flood of unauthenticated requests cannot grow the store without bound.
    rate_limit_denials: str = "120/minute"
    rate_limit_storage: str = "memory://"  # a `limits` storage URI
    read_wait_max_waiters: int = Field(default=16, ge=1)  # min_position waits at once
    health_cache_s: float = Field(default=2.0, ge=0.0)  # /readyz and /metrics reuse a check

    # FHIR Bulk Data export (services/fhir/export): where the NDJSON files are written (a
    # 0700 directory per job), how long a finished job's files are kept, how many exports
    # run at once (past that a kick-off answers 429), and how long a job waits for the read
    # tables to catch up with the store before it scans them (past that it fails).
    fhir_export_dir: Path = REPO_ROOT / ".data" / "fhir-export"
    fhir_export_keep_s: float = Field(default=3600.0, gt=0)
    fhir_export_max_running: int = Field(default=2, ge=1)
    fhir_export_catch_up_s: float = Field(default=30.0, gt=0)

    # Years to keep a patient's data after their last event in each area (JSON in the env:
    # BACKBONE_RETENTION_YEARS='{"patients": 10, ...}'); the longest area that applies wins.
    retention_years: dict[str, float] = Field(default_factory=lambda: dict(RETENTION_YEARS))

    route_abnormal_results: bool = False  # also route H and L, not only HH and LL
    # Compliance alert (GET /v1/audit/alerts): a critical result unacknowledged this long.
    critical_ack_minutes: int = 30
    # Escalation (the lab-routing consumer): an unacknowledged critical result goes to the
    # rest of the care team after BACKBONE_CRITICAL_ESCALATION_MINUTES; the _S setting
    # overrides it in seconds (tests). The sweep looks every critical_escalation_sweep_s.
    critical_escalation_minutes: float = Field(default=30.0, gt=0)
    critical_escalation_s: float | None = Field(default=None, gt=0)
    critical_escalation_sweep_s: float = Field(default=15.0, gt=0)

    relay_name: str = "relay"
    # How many `backbone project` processes `backbone up` runs (one consumer group per
    # projection: the instances split its partitions; `make run PROJECTION_INSTANCES=2`).
    projection_instances: int = Field(default=1, ge=1, le=16)
    relay_batch_size: int = 500
    relay_poll_interval_s: float = 0.1
    relay_flush_timeout_s: float = Field(default=8.0, ge=2.0)
    relay_max_backoff_s: float = 10.0
    # Two relays on one store: the standby tries for the relay lock this often; a new leader
    # waits until the last one's heartbeat is this old (None: the flush timeout and 1 s),
    # so a batch it sent just before it lost the lock is through (services/relay/leadership).
    relay_standby_poll_s: float = Field(default=1.0, gt=0)
    relay_takeover_grace_s: float | None = Field(default=None, ge=0)
    chain_checkpoint_interval_s: float = 300.0

    # The watchdog of `backbone up` (services/watchdog.py): a crashed process is started again
    # after supervisor_backoff_s, doubled per restart in the window (at most the max), at most
    # supervisor_max_restarts times in supervisor_restart_window_s; then it is left down.
    supervisor_max_restarts: int = Field(default=5, ge=0)
    supervisor_restart_window_s: float = Field(default=600.0, gt=0)
    supervisor_backoff_s: float = Field(default=1.0, ge=0)
    supervisor_max_backoff_s: float = Field(default=30.0, ge=0)
    supervisor_check_interval_s: float = Field(default=1.0, gt=0)

    # The key service (``backbone keys serve``): payload keys over TLS with required client
    # certificates from the CA (tls_dir), with the servers' certificate.
    key_service_host: str = "127.0.0.1"
    key_service_port: int = 8444

    @model_validator(mode="after")
    def _no_placeholder_secrets_outside_development(self) -> ServiceSettings:
        if self.environment != "development":
            # (Session tokens are random and stored hashed: there is no token secret.)
            dev_password = DEVELOPMENT_DB_PASSWORD
            if self.postgres_password == dev_password or f":{dev_password}@" in self.database_url:
                raise ValueError(
                    "BACKBONE_POSTGRES_PASSWORD / BACKBONE_DATABASE_URL: the development "
                    "database password is refused here"
                )
            if self.metrics_token is not None and len(self.metrics_token) < 32:
                raise ValueError("BACKBONE_METRICS_TOKEN must be 32+ characters here")
            if self.kafka_security_protocol != "SSL":
                raise ValueError("BACKBONE_KAFKA_SECURITY_PROTOCOL: plaintext is refused here")
        if not self.api_tls and self.api_host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"BACKBONE_API_TLS=false serves plain HTTP: only on loopback, behind a "
                f"TLS-terminating proxy on this host, not on BACKBONE_API_HOST={self.api_host}"
            )
        if self.environment == "development" and self.api_host not in LOOPBACK_HOSTS:
            # An unset BACKBONE_ENVIRONMENT means the public development secrets: only on
            # this machine, never on an address others can reach.
            raise ValueError(
                f"development settings (public secrets) serve only on loopback, not on "
                f"BACKBONE_API_HOST={self.api_host}: set BACKBONE_ENVIRONMENT and real secrets"
            )
        return self

    @property
    def docs_are_public(self) -> bool:
        """Whether /docs and /openapi.json answer without a token."""
        if self.public_docs is None:
            return self.environment == "development"
        return self.public_docs

    @property
    def critical_escalation_after(self) -> timedelta:
        """How long a critical result may stay unacknowledged before it is escalated."""
        if self.critical_escalation_s is not None:
            return timedelta(seconds=self.critical_escalation_s)
        return timedelta(minutes=self.critical_escalation_minutes)

    @property
    def api_url(self) -> str:
        """Where the project's own clients reach the API (https unless BACKBONE_API_TLS=false)."""
        scheme = "https" if self.api_tls else "http"
        return f"{scheme}://{self.api_host}:{self.api_port}"

    @property
    def ca_file(self) -> Path:
        """The CA file clients verify the servers against."""
        return self.tls_ca_file or self.tls_dir / "ca.pem"

    @property
    def relay_takeover_grace(self) -> float:
        """How long a new leader waits out a previous relay's last batch."""
        if self.relay_takeover_grace_s is not None:
            return self.relay_takeover_grace_s
        return self.relay_flush_timeout_s + 1.0

    @property
    def api_certificate(self) -> tuple[Path, Path]:
        """The API's certificate (its chain) and private key files."""
        return (
            self.api_tls_cert_file or self.tls_dir / "server.pem",
            self.api_tls_key_file or self.tls_dir / "server.key",
        )

    @property
    def roles_file(self) -> Path:
        """The services' database role passwords."""
        return self.database_roles_file or self.data_dir / "keys" / "database-roles.json"

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def demo_dir(self) -> Path:
        return self.data_dir / "demo"

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"


@lru_cache(maxsize=1)
def get_settings() -> ServiceSettings:
    """The process-wide settings, read once; settings refused stop the process (``Refused``)."""
    try:
        return ServiceSettings()
    except ValidationError as exc:
        raise Refused(exc) from None


class Refused(SystemExit):
    """The process refuses to start: says which settings and why, never their values
    (pydantic's own message quotes the input, secrets included)."""

    def __init__(self, error: ValidationError) -> None:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        super().__init__(f"backbone: refusing to start: {reasons}")
        self.reasons = reasons

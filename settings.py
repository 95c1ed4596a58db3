"""The one place the service reads its environment.

Every process (API, worker, Flower, CLI, migrations) builds the same `Settings`
from the same variables, so a value means the same thing everywhere and a
missing one stops the process at start-up instead of at the first order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlparse

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# CELERY_BROKER_URL schemes of Redis; anything else (amqp://, pyamqp://) is RabbitMQ (README, 'Choosing a broker').
REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+socket"})


# DATABASE_URL schemes of PostgreSQL. SQLAlchemy 2.1 maps the bare ones to psycopg 3, which is not
# installed; the service runs on psycopg2, so every process is given that driver's URL.
DATABASE_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg2"})
DATABASE_DRIVER = "postgresql+psycopg2"
DATABASE_URL_EXAMPLE = "postgresql://user:password@host:5432/database"

# The first of each is the default.
WORKER_POOLS = ("threads", "prefork", "solo")  # Celery's pools that need no extra package
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("info", "debug", "warning", "error", "critical")


class ConfigError(SystemExit):
    """A required setting is missing, malformed or points nowhere; the message names it.

    A SystemExit, so that wherever start-up raises it (gunicorn.conf.py or its master's
    on_starting, Celery loading its configuration or a signal handler, Flower's
    flowerconfig.py, the flask CLI) the process stops with that one line (Python prints it, exit status 1), not a
    traceback, and no handler of `Exception` on the way carries on without it.
    """


def _text(env, name, default=None, required=False):
    value = env.get(name, "").strip()
    if value:
        return value
    if required:
        raise ConfigError(f"{name} is not set; export it (see README, 'Configuration')")
    return default


def _number(env, name, default, kind=float, minimum=0, maximum=None):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={raw!r} must be at most {maximum}")
    return value


def _choice(env, name, choices):
    """One of `choices` (the first is the default), case-insensitive."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return choices[0]
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw


def _credentials(env, name) -> tuple[str, ...]:
    """`user:password` pairs, comma-separated; each needs both parts."""
    pairs = tuple(pair.strip() for pair in env.get(name, "").split(",") if pair.strip())
    for pair in pairs:
        user, _, password = pair.partition(":")
        if not (user and password):
            raise ConfigError(f"{name} must be user:password (comma-separated for several)")
    return pairs


def _traces_exporter(env) -> bool:
    """Whether traces are exported: OTEL_TRACES_EXPORTER=otlp (OTLP over HTTP); unset or none: off."""
    raw = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if raw in {"", "none"}:
        return False
    if raw == "otlp":
        return True
    raise ConfigError(f"OTEL_TRACES_EXPORTER={raw!r} is not supported (use otlp or none)")


def _flag(env, name, default):
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def database_url(raw: str) -> str:
    """DATABASE_URL in any of its usual PostgreSQL forms, as the URL of the installed driver."""
    try:
        scheme = make_url(raw).drivername
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL is not a database URL; expected e.g. {DATABASE_URL_EXAMPLE}") from None
    if scheme not in DATABASE_SCHEMES:
        raise ConfigError(f"DATABASE_URL has the scheme {scheme}://, which is not PostgreSQL's; expected e.g. "
                          f"{DATABASE_URL_EXAMPLE}")
    return DATABASE_DRIVER + raw[raw.index("://"):]  # the rest exactly as given


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment; see README 'Configuration' for each name."""

    database_url: str
    broker_url: str
    catalog_url: str | None = None
    cart_url: str | None = None
    auto_migrate: bool = True
    peer_timeout: float = 5.0
    # A batch calls the catalog once per product of the batch, all at once, while it holds those
    # products' locks: a pool smaller than that splits the call into waves, a round trip each.
    peer_pool_size: int = 128
    retry_deadline: float = 1800.0
    batch_size: int = 32
    retry_backoff_base: float = 0.5
    retry_backoff_max: float = 30.0
    dispatch_deadline: float = 30.0
    sweep_interval: float = 5.0
    task_soft_time_limit: float = 120.0
    task_time_limit: float = 150.0
    visibility_timeout: float = 3600.0
    db_pool_size: int = 10
    worker_concurrency: int = 16
    worker_pool: str = "threads"
    worker_metrics_port: int = 0  # 0: no endpoint
    worker_metrics_addr: str = "127.0.0.1"
    # gunicorn (gunicorn.conf.py)
    host: str = "0.0.0.0"  # noqa: S104 - containers listen on all interfaces
    port: int = 8000
    web_workers: int = 2
    web_threads: int = 4
    access_log: bool = False
    # Prometheus' multiprocess directory (None: gunicorn.conf.py makes one up)
    metrics_dir: str | None = None
    # Flower (flowerconfig.py)
    flower_basic_auth: tuple[str, ...] = ()
    flower_max_tasks: int = 10_000
    log_level: str = "INFO"
    log_format: str = "text"
    auth_disabled: bool = False
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    metrics_require_auth: bool = False
    max_items_per_order: int = 50
    max_item_quantity: int = 10_000
    max_body_bytes: int = 64 * 1024
    max_import_lines: int = 1_000
    max_import_bytes: int = 4 * 1024 * 1024
    rate_limit: str = "200 per second"
    rate_limit_storage: str | None = None
    max_unfinished_jobs: int = 100_000
    max_waiting_requests: int = 2
    webhook_secret: str | None = None
    webhook_allow_private: bool = False
    webhook_max_attempts: int = 10
    webhook_backoff_base: float = 1.0
    webhook_backoff_max: float = 600.0
    webhook_timeout: float = 5.0
    # Finished jobs (with their ledger rows and webhook deliveries) older than this many days are
    # pruned, `retention_batch_size` jobs per transaction (tasks.retention); 0 keeps everything.
    retention_days: int = 30
    retention_batch_size: int = 500
    # OpenTelemetry traces: off unless OTEL_TRACES_EXPORTER=otlp; the SDK reads the other OTEL_*
    # variables itself (endpoint, sampler); the service name defaults per process kind.
    tracing: bool = False
    service_name: str | None = None

    @classmethod
    def from_env(cls, env=None) -> "Settings":
        """Read and check every variable once; raise ConfigError naming what is wrong."""
        env = os.environ if env is None else env
        settings = cls(
            database_url=database_url(_text(env, "DATABASE_URL", required=True)),
            broker_url=_text(env, "CELERY_BROKER_URL", required=True),
            catalog_url=_text(env, "CATALOG_URL"),
            cart_url=_text(env, "CART_URL"),
            auto_migrate=_flag(env, "AUTO_MIGRATE", True),
            peer_timeout=_number(env, "PEER_TIMEOUT_SECONDS", 5.0, minimum=0.1),
            peer_pool_size=_number(env, "PEER_POOL_SIZE", 128, int, minimum=1),
            retry_deadline=_number(env, "JOB_RETRY_DEADLINE_SECONDS", 1800.0, minimum=1),
            batch_size=_number(env, "BATCH_SIZE", 32, int, minimum=1),
            retry_backoff_base=_number(env, "RETRY_BACKOFF_BASE_SECONDS", 0.5),
            retry_backoff_max=_number(env, "RETRY_BACKOFF_MAX_SECONDS", 30.0),
            dispatch_deadline=_number(env, "DISPATCH_DEADLINE_SECONDS", 30.0, minimum=1),
            sweep_interval=_number(env, "SWEEP_INTERVAL_SECONDS", 5.0, minimum=0.2),
            task_soft_time_limit=_number(env, "TASK_SOFT_TIME_LIMIT_SECONDS", 120.0, minimum=1),
            task_time_limit=_number(env, "TASK_TIME_LIMIT_SECONDS", 150.0, minimum=1),
            visibility_timeout=_number(env, "BROKER_VISIBILITY_TIMEOUT_SECONDS", 3600.0, minimum=10),
            db_pool_size=_number(env, "DB_POOL_SIZE", 10, int, minimum=1),
            worker_concurrency=_number(env, "WORKER_CONCURRENCY", 16, int, minimum=1),
            worker_pool=_choice(env, "WORKER_POOL", WORKER_POOLS),
            worker_metrics_port=_number(env, "WORKER_METRICS_PORT", 0, int, maximum=65535),
            worker_metrics_addr=_text(env, "WORKER_METRICS_ADDR", "127.0.0.1"),
            host=_text(env, "HOST", "0.0.0.0"),  # noqa: S104 - containers listen on all interfaces
            port=_number(env, "PORT", 8000, int, minimum=1, maximum=65535),
            web_workers=_number(env, "WEB_WORKERS", 2, int, minimum=1),
            web_threads=_number(env, "WEB_THREADS", 4, int, minimum=1),
            access_log=_flag(env, "ACCESS_LOG", False),
            metrics_dir=_text(env, "PROMETHEUS_MULTIPROC_DIR"),
            flower_basic_auth=_credentials(env, "FLOWER_BASIC_AUTH"),
            flower_max_tasks=_number(env, "FLOWER_MAX_TASKS", 10_000, int, minimum=1),
            log_level=_choice(env, "LOG_LEVEL", LOG_LEVELS).upper(),
            log_format=_choice(env, "LOG_FORMAT", LOG_FORMATS),
            tracing=_traces_exporter(env),
            service_name=_text(env, "OTEL_SERVICE_NAME"),
            auth_disabled=_flag(env, "AUTH_DISABLED", False),
            jwt_secret=_text(env, "JWT_SECRET"),
            jwt_public_key=_text(env, "JWT_PUBLIC_KEY"),
            jwt_audience=_text(env, "JWT_AUDIENCE"),
            jwt_issuer=_text(env, "JWT_ISSUER"),
            metrics_require_auth=_flag(env, "METRICS_REQUIRE_AUTH", False),
            max_items_per_order=_number(env, "MAX_ITEMS_PER_ORDER", 50, int, minimum=1),
            max_item_quantity=_number(env, "MAX_ITEM_QUANTITY", 10_000, int, minimum=1),
            max_body_bytes=_number(env, "MAX_BODY_BYTES", 64 * 1024, int, minimum=1024),
            max_import_lines=_number(env, "MAX_IMPORT_LINES", 1_000, int, minimum=1),
            max_import_bytes=_number(env, "MAX_IMPORT_BYTES", 4 * 1024 * 1024, int, minimum=1024),
            rate_limit=_text(env, "RATE_LIMIT", "200 per second"),
            rate_limit_storage=_text(env, "RATE_LIMIT_STORAGE_URI"),
            max_unfinished_jobs=_number(env, "MAX_UNFINISHED_JOBS", 100_000, int, minimum=1),
            max_waiting_requests=_number(env, "MAX_WAITING_REQUESTS", 2, int, minimum=0),
            webhook_secret=_text(env, "WEBHOOK_SECRET"),
            webhook_allow_private=_flag(env, "WEBHOOK_ALLOW_PRIVATE", False),
            webhook_max_attempts=_number(env, "WEBHOOK_MAX_ATTEMPTS", 10, int, minimum=1),
            webhook_backoff_base=_number(env, "WEBHOOK_BACKOFF_BASE_SECONDS", 1.0),
            webhook_backoff_max=_number(env, "WEBHOOK_BACKOFF_MAX_SECONDS", 600.0),
            webhook_timeout=_number(env, "WEBHOOK_TIMEOUT_SECONDS", 5.0, minimum=0.1),
            retention_days=_number(env, "RETENTION_DAYS", 30, int),
            retention_batch_size=_number(env, "RETENTION_BATCH_SIZE", 500, int, minimum=1),
        )
        if settings.webhook_secret is not None and len(settings.webhook_secret) < 32:
            raise ConfigError("WEBHOOK_SECRET must be at least 32 characters")
        settings.check_delivery_windows()
        return settings

    @property
    def broker_is_redis(self) -> bool:
        """True for Redis, False for RabbitMQ: Celery's options and the Redis-only checks depend on it."""
        return urlparse(self.broker_url).scheme in REDIS_SCHEMES

    @property
    def redis_url(self) -> str:
        """The service's Redis (rate limits, the wake-up flag): RATE_LIMIT_STORAGE_URI, else the
        broker when the broker is Redis."""
        if self.rate_limit_storage:
            return self.rate_limit_storage
        if self.broker_is_redis:
            return self.broker_url
        raise ConfigError("RATE_LIMIT_STORAGE_URI is not set; with RabbitMQ as the broker the service "
                          "needs a Redis URL of its own (e.g. redis://redis:6379/0)")

    def check_delivery_windows(self) -> None:
        """Redis redelivers any message unacked for `visibility_timeout`; every wait must be shorter.

        RabbitMQ has no visibility timeout (an unacked message comes back only when its
        consumer's channel closes), so that check applies to Redis alone.
        """
        longest = max(self.retry_backoff_max, self.webhook_backoff_max, self.task_time_limit, self.dispatch_deadline)
        if self.broker_is_redis and longest >= self.visibility_timeout:
            raise ConfigError(
                "BROKER_VISIBILITY_TIMEOUT_SECONDS must exceed the task time limit, the retry "
                "backoff caps and the dispatch deadline, or Redis redelivers waiting tasks as duplicates"
            )
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ConfigError("TASK_SOFT_TIME_LIMIT_SECONDS must be below TASK_TIME_LIMIT_SECONDS")

    def require_auth(self) -> None:
        """The API refuses to start without a way to check tokens, unless auth is switched off explicitly."""
        if self.auth_disabled:
            return
        if not (self.jwt_secret or self.jwt_public_key):
            raise ConfigError("set JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256), or AUTH_DISABLED=true "
                              "for local development only")
        if self.jwt_secret and self.jwt_public_key:
            raise ConfigError("set only one of JWT_SECRET and JWT_PUBLIC_KEY")
        if self.jwt_secret and len(self.jwt_secret) < 32:
            raise ConfigError("JWT_SECRET must be at least 32 characters")

    def require_flower_auth(self) -> list[str]:
        """Flower is never served without basic auth."""
        if not self.flower_basic_auth:
            raise ConfigError("FLOWER_BASIC_AUTH=user:password must be set; Flower is never served without auth")
        return list(self.flower_basic_auth)

    def require_peers(self) -> tuple[str, str]:
        """The worker cannot place an order without both peers; say so at start-up."""
        missing = [name for name, value in (("CATALOG_URL", self.catalog_url), ("CART_URL", self.cart_url)) if not value]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} not set; the worker needs both peer URLs")
        return self.catalog_url, self.cart_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read on first use."""
    return Settings.from_env()

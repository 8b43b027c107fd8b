"""Settings: one frozen object, read once from the ``WEBCARE_*`` environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./webcare.db"
MIN_SECRET_LENGTH = 32


class SettingsError(ValueError):
    """A missing or malformed setting, with a message for the person starting the service."""


class Secret:
    """A string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    #: Seconds without activity after which a claim returns to the queue.
    claim_lease_seconds: int = 900
    #: How often the lease sweeper looks for expired claims.
    lease_sweep_seconds: float = 15.0
    session_max_age_seconds: int = 12 * 3600
    #: Marks the session cookie Secure (set behind HTTPS).
    secure_cookies: bool = False
    #: How long a process may answer "who is this token or session?" from memory instead of the database.
    #: A change made through another process (a user deactivated, a session ended) holds there within this;
    #: changes made through this process hold at once. 0 asks the database on every request.
    auth_cache_seconds: float = 2.0
    login_max_failures: int = 10
    login_window_seconds: int = 600
    max_body_bytes: int = 256 * 1024
    #: How often each hub reads the event log though nothing woke it: a lost notification costs at most this.
    live_poll_seconds: float = 5.0
    #: Recent events each hub keeps for its sockets; one that falls further behind is closed with 4000.
    live_buffer_size: int = 5000
    #: How often an open live stream checks that its session or token still holds (a user deactivated, a
    #: token revoked, a role changed): at most this long until such a socket is closed with 4001.
    live_recheck_seconds: float = 30.0
    #: How long a worker may hold an account between signs of life before another takes it over.
    poll_lease_seconds: float = 120.0
    #: How long a reply may stay 'sending' before another worker reconciles it.
    send_lease_seconds: float = 60.0
    #: How long a webhook delivery may stay unprocessed after it was accepted before the sweep takes it up.
    webhook_lease_seconds: float = 60.0
    #: How often the workers look for webhook deliveries left unprocessed.
    webhook_sweep_seconds: float = 5.0
    log_level: str = "info"
    #: The organisation's time zone: the days of the metrics, and business hours unless they name their own.
    timezone: str = "Europe/Amsterdam"
    #: How often the SLA sweeper looks for conversations that crossed a target.
    sla_sweep_seconds: float = 15.0

    def __post_init__(self) -> None:
        if len(self.secret_key.reveal()) < MIN_SECRET_LENGTH:
            raise SettingsError(
                f"WEBCARE_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters "
                "(it signs sessions and encrypts account credentials)"
            )
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise SettingsError(
                "WEBCARE_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
                f"not {self.database_url.split(':', 1)[0]!r}"
            )
        if self.auth_cache_seconds < 0:
            raise SettingsError("WEBCARE_AUTH_CACHE_SECONDS must not be negative")
        if self.claim_lease_seconds <= 0:
            raise SettingsError("WEBCARE_CLAIM_LEASE_SECONDS must be positive")
        if self.live_poll_seconds <= 0 or self.live_buffer_size <= 0 or self.live_recheck_seconds <= 0:
            raise SettingsError("WEBCARE_LIVE_POLL_SECONDS, WEBCARE_LIVE_BUFFER_SIZE and "
                                "WEBCARE_LIVE_RECHECK_SECONDS must be positive")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"WEBCARE_TIMEZONE must be an IANA time zone such as Europe/Amsterdam, "
                                f"not {self.timezone!r}") from None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, secret_fallback: str | None = None) -> Settings:
        """Read the settings; ``secret_fallback`` stands in for a missing secret (demo mode only)."""
        env = os.environ if env is None else env
        secret = env.get("WEBCARE_SECRET_KEY") or secret_fallback
        if not secret:
            raise SettingsError(
                "WEBCARE_SECRET_KEY is not set: give it a random value of at least 32 characters, "
                "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return cls(
            database_url=env.get("WEBCARE_DATABASE_URL", DEFAULT_DATABASE_URL),
            secret_key=Secret(secret),
            claim_lease_seconds=_int(env, "WEBCARE_CLAIM_LEASE_SECONDS", cls.claim_lease_seconds),
            lease_sweep_seconds=_float(env, "WEBCARE_LEASE_SWEEP_SECONDS", cls.lease_sweep_seconds),
            session_max_age_seconds=_int(env, "WEBCARE_SESSION_MAX_AGE_SECONDS", cls.session_max_age_seconds),
            secure_cookies=_bool(env, "WEBCARE_SECURE_COOKIES", cls.secure_cookies),
            live_poll_seconds=_float(env, "WEBCARE_LIVE_POLL_SECONDS", cls.live_poll_seconds),
            live_buffer_size=_int(env, "WEBCARE_LIVE_BUFFER_SIZE", cls.live_buffer_size),
            live_recheck_seconds=_float(env, "WEBCARE_LIVE_RECHECK_SECONDS", cls.live_recheck_seconds),
            auth_cache_seconds=_float(env, "WEBCARE_AUTH_CACHE_SECONDS", cls.auth_cache_seconds),
            poll_lease_seconds=_float(env, "WEBCARE_POLL_LEASE_SECONDS", cls.poll_lease_seconds),
            send_lease_seconds=_float(env, "WEBCARE_SEND_LEASE_SECONDS", cls.send_lease_seconds),
            webhook_lease_seconds=_float(env, "WEBCARE_WEBHOOK_LEASE_SECONDS", cls.webhook_lease_seconds),
            webhook_sweep_seconds=_float(env, "WEBCARE_WEBHOOK_SWEEP_SECONDS", cls.webhook_sweep_seconds),
            log_level=env.get("WEBCARE_LOG_LEVEL", cls.log_level),
            timezone=env.get("WEBCARE_TIMEZONE") or cls.timezone,
            sla_sweep_seconds=_float(env, "WEBCARE_SLA_SWEEP_SECONDS", cls.sla_sweep_seconds),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")

"""Settings, built once from the environment and passed down (never read as globals)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the server reads. Environment variables use the ``ADCP_AGENT_`` prefix,
    except ``DATABASE_URL`` which keeps its conventional name."""

    model_config = SettingsConfigDict(env_prefix="ADCP_AGENT_", extra="ignore")

    data_dir: Path = Field(default=Path(".adcp-agent"), description="Where SQLite lives.")
    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="SQLAlchemy async URL; default is SQLite under data_dir.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    demo_token: str | None = Field(
        default=None, description="Fixes the demo principal's token (for scripts)."
    )
    seed_demo: bool = Field(default=True, description="Create the demo tenant on first start.")
    default_tenant: str | None = Field(
        default=None,
        description="Tenant answering unauthenticated discovery when no x-adcp-tenant header "
        "is sent. Defaults to the demo tenant.",
    )
    public_base_url: str | None = Field(
        default=None, description="Externally visible base URL (used for agent_url)."
    )
    log_level: str = "info"
    mcp_rate_limit_per_minute: int = Field(
        default=1000, ge=1, description="MCP requests a minute per token (or per IP if anonymous)."
    )
    admin_rate_limit_per_minute: int = Field(
        default=100, ge=1, description="Tenant-management API requests a minute per API key."
    )
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted (413 beyond it): a 100 MB body was "
        "read, parsed and held whole.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet keys, comma-separated, sealing stored secrets (the first seals, "
        "the rest open what they sealed); default: secret.key in data_dir, made on first "
        "start. Servers sharing one database need the same keys.",
    )
    mcp_fast_tool_calls: bool = Field(
        default=True,
        description="Answer single tools/call requests without a per-request MCP session "
        "(adcp_agent_tools.fast_calls); off: every request goes through the SDK transport.",
    )
    otel_spans: bool = Field(
        default=False,
        description="FastMCP's OpenTelemetry spans for each MCP request (fastmcp's "
        "telemetry_mode native); off, it touches no trace context. Worth it only with an "
        "OpenTelemetry SDK configured in the process: without one, each span is a no-op "
        "that still cost ~1.6% of a booking.",
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="ANTHROPIC_API_KEY",
        description="Key for the chat endpoints' model; without it chat answers 503.",
    )
    chat_max_iterations: int = Field(
        default=10, ge=1, le=25, description="Model turns per chat message unless asked."
    )
    chat_max_tokens: int = Field(
        default=4096, ge=256, description="Output token budget of one model turn."
    )
    sim_clock: bool = Field(
        default=False,
        description="Run on a simulated clock that moves only when advanced (POST "
        "/api/v1/tenant-management/clock/advance): reproducible delivery simulations.",
    )
    sim_clock_start: datetime | None = Field(
        default=None,
        description="Where a new simulated clock starts (ISO 8601 with zone); default: the "
        "current hour. A clock already saved under data_dir resumes instead.",
    )
    # Notifications: the outbox worker (webhooks, Slack, AdCP push) and email.
    outbox_worker: bool = Field(
        default=True, description="Deliver outbox events from this process (off: another does)."
    )
    outbox_poll_seconds: float = Field(default=1.0, gt=0, description="Idle poll interval.")
    outbox_max_attempts: int = Field(default=8, ge=1, description="Attempts before dead letter.")
    outbox_backoff_seconds: float = Field(
        default=10.0, gt=0, description="First retry delay; doubles per attempt, with jitter."
    )
    outbox_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    outbox_lease_seconds: float = Field(
        default=120.0, gt=0, description="How long a claimed delivery is a worker's own."
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    governance_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="How long a buyer's governance agent has to answer check_governance.",
    )
    campaign_check_seconds: float = Field(
        default=60.0, gt=0, description="How often ended flights are checked for completion."
    )
    smtp_host: str | None = Field(default=None, description="Without it, email is disabled.")
    smtp_port: int = 587
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "adcp-agent@localhost"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)

    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Accept the conventional scheme and pick the async driver for it.
            if url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url[len("postgres://") :]
            elif url.startswith("postgresql://"):
                url = "postgresql+asyncpg://" + url[len("postgresql://") :]
            elif url.startswith("sqlite:///"):
                url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'adcp-agent.db').resolve()}"

    def base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

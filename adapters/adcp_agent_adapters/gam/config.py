"""A tenant's Google Ad Manager settings: the network, the trafficking defaults and the
credentials, either a service-account key or OAuth client credentials.

Every secret can be given inline (kept as ``SecretStr``, so it never shows in a repr or a
log line) or as the *name* of an environment variable that holds it
(``refresh_token_env: "GAM_REFRESH_TOKEN"``). Env references are resolved when the
adapter first talks to Google, so a tenant's stored config never has to contain a secret.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from googleads import ad_manager
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from adcp_agent.errors import AdcpError

# The Ad Manager SOAP versions the installed googleads knows; we default to the newest.
SUPPORTED_API_VERSIONS: tuple[str, ...] = tuple(sorted(ad_manager._SERVICE_MAP))
DEFAULT_API_VERSION = SUPPORTED_API_VERSIONS[-1]

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_SECRETS = ("service_account_json", "client_id", "client_secret", "refresh_token")


class GamConfig(BaseModel):
    """``adapter_config`` of a tenant whose ``ad_server`` is ``google_ad_manager``."""

    model_config = ConfigDict(extra="forbid")

    network_code: str = Field(pattern=r"^\d{1,20}$", description="The GAM network code.")
    application_name: str = Field(
        default="adcp-agent",
        min_length=1,
        max_length=100,
        description="Sent in every SOAP header; shows in GAM's change history.",
    )
    trafficker_id: int = Field(gt=0, description="GAM user id set as each order's trafficker.")
    default_advertiser_id: int | None = Field(
        default=None,
        gt=0,
        description="GAM company id used when the buyer has no gam_advertiser_id mapping.",
    )
    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^v\d{6}$")
    timeout_seconds: float = Field(default=60.0, gt=0, le=600, description="Per SOAP call.")
    network_timezone: str = Field(
        default="America/New_York",
        description="The network's time zone: line item start/end times are sent in it.",
    )
    currency_code: str = Field(
        default="USD", pattern=r"^[A-Z]{3}$", description="Network currency (forecasts)."
    )
    max_attempts: int = Field(default=4, ge=1, le=10, description="Tries per SOAP call.")
    report_timeout_seconds: float = Field(default=300.0, gt=0, le=3600)
    geo_location_ids: dict[str, int] = Field(
        default_factory=dict,
        description="Extra or overriding GAM Location ids: 'FR' (country), 'US-CA' "
        "(region), a Nielsen DMA code such as '501' (metro) or 'US:10001' (postal code).",
    )
    device_category_ids: dict[str, int] = Field(
        default_factory=dict,
        description="Overrides for AdCP device types (desktop, mobile, tablet, ctv, dooh) "
        "to GAM device category ids.",
    )
    operating_system_ids: dict[str, int] = Field(
        default_factory=dict,
        description="AdCP device platforms (ios, android, windows, roku_os…) to the "
        "network's GAM operating system ids (the Operating_System PQL table).",
    )
    daypart_time_zone: Literal["PUBLISHER", "BROWSER"] = Field(
        default="PUBLISHER",
        description="Whose clock AdCP daypart_targets' hours are read on: the network's "
        "(PUBLISHER) or the viewer's (BROWSER).",
    )

    # Credentials: a service-account JSON key ...
    service_account_json: SecretStr | None = None
    service_account_json_env: str | None = None
    # ... or an OAuth client with a refresh token.
    client_id: SecretStr | None = None
    client_id_env: str | None = None
    client_secret: SecretStr | None = None
    client_secret_env: str | None = None
    refresh_token: SecretStr | None = None
    refresh_token_env: str | None = None

    @field_validator(*(f"{name}_env" for name in _SECRETS))
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "must name an environment variable (upper-case letters, digits and "
                "underscores, not starting with a digit), e.g. GAM_REFRESH_TOKEN"
            )
        return value

    @field_validator("api_version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value not in SUPPORTED_API_VERSIONS:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_API_VERSIONS)}")
        return value

    @field_validator("network_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as America/New_York") from None
        return value

    @field_validator("service_account_json")
    @classmethod
    def _key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _parse_service_account(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_credential_style(self) -> GamConfig:
        for name in _SECRETS:
            if getattr(self, name) is not None and getattr(self, f"{name}_env") is not None:
                raise ValueError(f"give {name} or {name}_env, not both")
        given = {name for name in _SECRETS if self._has(name)}
        oauth = {"client_id", "client_secret", "refresh_token"}
        if "service_account_json" in given and given & oauth:
            raise ValueError(
                "give either a service-account key or OAuth client credentials, not both"
            )
        if "service_account_json" not in given:
            missing = sorted(oauth - given)
            if missing == sorted(oauth):
                raise ValueError(
                    "credentials are required: service_account_json(_env), or client_id, "
                    "client_secret and refresh_token (each inline or as *_env)"
                )
            if missing:
                raise ValueError(f"OAuth credentials are incomplete: missing {missing[0]}")
        return self

    def _has(self, name: str) -> bool:
        return getattr(self, name) is not None or getattr(self, f"{name}_env") is not None

    @property
    def credential_style(self) -> Literal["service_account", "oauth"]:
        return "service_account" if self._has("service_account_json") else "oauth"

    def secret(self, name: str, env: Mapping[str, str] | None = None) -> str:
        """The value of one secret, read from the environment when given by reference.
        Errors name the variable, never a value."""
        inline: SecretStr | None = getattr(self, name)
        if inline is not None:
            return inline.get_secret_value()
        var = getattr(self, f"{name}_env")
        value = (os.environ if env is None else env).get(var or "", "")
        if not value:
            raise AdcpError(
                "CONFIGURATION_ERROR",
                f"The Google Ad Manager credential {name} is read from the environment "
                f"variable {var}, which is not set.",
                field=f"adapter_config.{name}_env",
                suggestion=f"Set {var} in the agent's environment and restart it.",
                details={"ad_server": "google_ad_manager"},
            )
        return value


@dataclass(frozen=True)
class ServiceAccountKey:
    info: dict[str, Any]


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str
    refresh_token: str


def _parse_service_account(raw: str) -> dict[str, Any]:
    try:
        info = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError("service-account key must be the JSON key file's content") from None
    if not isinstance(info, dict) or not {"client_email", "private_key"} <= set(info):
        raise ValueError("service-account key needs client_email and private_key")
    return info


def resolve_credentials(
    config: GamConfig, env: Mapping[str, str] | None = None
) -> ServiceAccountKey | OAuthClient:
    if config.credential_style == "service_account":
        raw = config.secret("service_account_json", env)
        try:
            return ServiceAccountKey(_parse_service_account(raw))
        except ValueError as exc:
            raise AdcpError(
                "CONFIGURATION_ERROR",
                f"The Google Ad Manager service-account key is not usable: {exc}.",
                field="adapter_config.service_account_json_env",
                details={"ad_server": "google_ad_manager"},
            ) from None
    return OAuthClient(
        client_id=config.secret("client_id", env),
        client_secret=config.secret("client_secret", env),
        refresh_token=config.secret("refresh_token", env),
    )

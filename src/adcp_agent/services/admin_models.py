"""What publisher admins send to the tenant-management API, and the two rules every
admin response obeys: secrets are redacted, and updates are JSON merge patches.

Bodies are strict (no type coercion, unknown fields refused) so a typo fails loudly
instead of being ignored. The one exception is the seed's flat shape, where ad-server
settings sit next to the tenant's own fields (``gam_network_code``...): ``gam_*`` fields
are folded into ``adapter_config`` (tenants) or ``platform_mappings`` (principals).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adcp_agent.services import audiences, industries
from adcp_agent.services.creative_rules import CREATIVE_LEAD

AdServer = Literal["google_ad_manager", "kevel", "triton_digital", "mock"]
AD_SERVERS: tuple[str, ...] = ("google_ad_manager", "kevel", "triton_digital", "mock")

REDACTED = "***"
# "webhook_url": Slack incoming-webhook URLs carry their secret in the path.
_SECRET_WORDS = ("token", "secret", "password", "key", "credential", "webhook_url")
_FOLDED_PREFIX = "gam_"


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact_secrets(value: Any) -> Any:
    """A copy of ``value`` with every secret-named entry (at any depth) shown as ``***``."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_secret(str(k)) and v is not None else redact_secrets(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396: keys in ``patch`` replace, ``null`` removes, nested objects merge.
    A secret sent back as ``***`` (as a GET showed it) keeps the stored value, so an
    admin can edit a fetched tenant and PUT it back without wiping its credentials."""
    out = dict(current)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif value == REDACTED and is_secret(key):
            continue
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


def _fold(data: Any, into: str) -> Any:
    if not isinstance(data, dict):
        return data
    folded = {k: v for k, v in data.items() if isinstance(k, str) and k.startswith(_FOLDED_PREFIX)}
    target = data.get(into)
    if not folded or not (target is None or isinstance(target, dict)):
        return data  # nothing to fold, or a malformed target that validation will name
    rest = {k: v for k, v in data.items() if k not in folded}
    rest[into] = {**folded, **(target or {})}
    return rest


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null; omit the field to keep its current value")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _checked_features(features: dict[str, Any] | None) -> dict[str, Any] | None:
    """The features a publisher sets whose values have rules: ``blocked_industries``
    lists AdCP advertiser industries (null removes it, as every merged key)."""
    blocked = (features or {}).get(industries.FEATURE)
    if blocked is not None and (bad := industries.unknown(blocked)):
        raise ValueError(
            f"features.{industries.FEATURE} must list AdCP advertiser industries; "
            f"not: {', '.join(bad)}"
        )
    lead = (features or {}).get(CREATIVE_LEAD)
    if lead is not None and (
        isinstance(lead, bool) or not isinstance(lead, int | float) or not 0 <= lead <= 720
    ):
        raise ValueError(f"features.{CREATIVE_LEAD} must be a number of hours from 0 to 720")
    audiences.check_minimum_feature(features)
    return features


class TenantCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    subdomain: str = Field(min_length=1, max_length=63)
    ad_server: AdServer = "mock"
    adapter_config: dict[str, Any] = Field(default_factory=dict)
    features: dict[str, Any] = Field(default_factory=dict)
    publisher_domains: list[str] = Field(default_factory=list)
    public_discovery: bool = True
    tenant_id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")

    _features = field_validator("features")(lambda cls, value: _checked_features(value))

    @model_validator(mode="before")
    @classmethod
    def _fold_gam(cls, data: Any) -> Any:
        return _fold(data, "adapter_config")


class TenantUpdate(_Body):
    """Partial: omitted fields keep their value; ``adapter_config`` and ``features`` are
    merged (RFC 7396). Changing ``ad_server`` starts a fresh ``adapter_config``."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    ad_server: AdServer | None = None
    adapter_config: dict[str, Any] | None = None
    features: dict[str, Any] | None = None
    publisher_domains: list[str] | None = None
    public_discovery: bool | None = None

    _features = field_validator("features")(lambda cls, value: _checked_features(value))

    @model_validator(mode="before")
    @classmethod
    def _fold_gam(cls, data: Any) -> Any:
        return _fold(data, "adapter_config")

    _required = field_validator(
        "name", "ad_server", "publisher_domains", "public_discovery", mode="before"
    )(_not_null)


class PrincipalCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    access_token: str | None = Field(
        default=None, description="A custom token (at least 24 characters); random if omitted."
    )
    principal_id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")
    platform_mappings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _fold_gam(cls, data: Any) -> Any:
        return _fold(data, "platform_mappings")


class PrincipalUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    platform_mappings: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _fold_gam(cls, data: Any) -> Any:
        return _fold(data, "platform_mappings")

    _required = field_validator("name", mode="before")(_not_null)


class TokenRotation(_Body):
    access_token: str | None = Field(
        default=None, description="A custom token (at least 24 characters); random if omitted."
    )

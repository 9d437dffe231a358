"""AdCP push notifications: the ``push_notification_config`` a buyer sends with
create_media_buy / update_media_buy, stored per buy, and the ``mcp-webhook-payload``
envelope its events are delivered in.

Authentication follows the config: ``Bearer`` sends ``Authorization: Bearer
<credentials>``; ``HMAC-SHA256`` signs like the AdCP SDKs verify (``X-ADCP-Signature:
sha256=...`` + ``X-ADCP-Timestamp``); ``token`` is echoed in the payload. Without an
``authentication`` block AdCP 3.1 expects RFC 9421 signatures, which need a published
signing key this server does not have yet, so such deliveries carry only the token.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adcp_agent.db import statements
from adcp_agent.db.models import Tenant
from adcp_agent.db.models_events import OutboxEvent, PushNotificationRegistration
from adcp_agent.db.statements import Tx
from adcp_agent.sealing import SecretBox
from adcp_agent.services import ssrf
from adcp_agent.services.identity import Caller, new_id
from adcp_agent.services.notification_text import TITLES

FIELD = "push_notification_config"


class PushAuthentication(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schemes: list[Literal["Bearer", "HMAC-SHA256"]] = Field(min_length=1, max_length=1)
    credentials: str = Field(min_length=32, max_length=4096)


class PushNotificationConfig(BaseModel):
    """AdCP ``core/push-notification-config.json`` (unknown keys tolerated)."""

    model_config = ConfigDict(extra="allow")

    url: str = Field(min_length=1, max_length=2048, description="Where task updates are POSTed.")
    operation_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.:-]{1,255}$",
        description="Echoed in every notification's operation_id.",
    )
    token: str | None = Field(
        default=None, min_length=16, max_length=4096, description="Echoed in every payload."
    )
    authentication: PushAuthentication | None = Field(
        default=None, description="Legacy {schemes: ['Bearer'|'HMAC-SHA256'], credentials}."
    )


def accept(
    tenant: Tenant, config: PushNotificationConfig | None, box: SecretBox
) -> PushNotificationConfig | None:
    """``config`` as it is stored (``save``): its token and credentials sealed. An
    unusable URL is refused before anything is booked (the delivery-time SSRF check
    still runs on every send, since DNS can change)."""
    validate(tenant, config)
    if config is None:
        return None
    auth = config.authentication
    return config.model_copy(
        update={
            "token": box.seal_optional(config.token),
            "authentication": None
            if auth is None
            else auth.model_copy(update={"credentials": box.seal(auth.credentials)}),
        }
    )


def validate(tenant: Tenant, config: PushNotificationConfig | None) -> None:
    if config is not None:
        allowance = ssrf.Allowance.from_features(tenant.features)
        ssrf.check_registration(config.url, allowance, field=f"{FIELD}.url")


async def save(
    session: Tx,
    *,
    tenant_id: str,
    principal_id: str,
    media_buy_id: str | None,
    task_type: str,
    task_id: str | None,
    config: PushNotificationConfig,
    creative_ids: list[str] | None = None,
) -> PushNotificationRegistration:
    """Register the config in the caller's transaction; it supersedes earlier ones for
    the buy's future events (or, from sync_creatives, for ``creative_ids``' review
    decisions)."""
    auth = config.authentication
    row = statements.build(
        PushNotificationRegistration,
        config_id=new_id("push"),
        tenant_id=tenant_id,
        principal_id=principal_id,
        media_buy_id=media_buy_id,
        creative_ids=creative_ids,
        task_type=task_type,
        task_id=task_id,
        url=config.url,
        operation_id=config.operation_id,
        token=config.token,
        auth_scheme=auth.schemes[0] if auth else None,
        auth_credentials=auth.credentials if auth else None,
    )
    await statements.insert(session, row)
    return row


async def save_for_creatives(
    session: Tx, caller: Caller, config: PushNotificationConfig, creative_ids: list[str]
) -> PushNotificationRegistration:
    """A sync_creatives config: the review decisions on ``creative_ids`` go to it."""
    return await save(
        session,
        tenant_id=caller.tenant_id,
        principal_id=caller.require_principal(),
        media_buy_id=None,
        task_type="sync_creatives",
        task_id=new_id("sync"),
        config=config,
        creative_ids=creative_ids,
    )


_STATUS = {
    "media_buy.failed": "failed",
    "media_buy.rejected": "rejected",
    "creative.rejected": "completed",
}


def payload(
    event: OutboxEvent, registration: PushNotificationRegistration, token: str | None
) -> dict[str, Any]:
    """The AdCP ``core/mcp-webhook-payload.json`` envelope for one event, with the
    buyer's ``token`` (opened from the registration). The event id is the
    idempotency_key, so retries of one event dedupe at the buyer."""
    data = event.payload
    status = _STATUS.get(event.event_type, "completed")
    if status in ("failed", "rejected"):
        error = data.get("error") if isinstance(data.get("error"), dict) else None
        result: dict[str, Any] = {
            "errors": [
                error
                or {
                    "code": "TERMS_REJECTED" if status == "rejected" else "SERVICE_UNAVAILABLE",
                    "message": str(data.get("reason") or TITLES[event.event_type]),
                }
            ]
        }
    elif registration.task_type == "sync_creatives":
        # A review decision, as the sync's answer would have given it.
        status = "completed"
        decided = {"creative_id": data["creative_id"], "action": "unchanged"}
        result = {"creatives": [{**decided, "status": data["status"]}]}
    else:
        result = {
            k: data[k]
            for k in ("media_buy_id", "media_buy_status", "revision", "confirmed_at", "packages")
            if k in data
        }
        if "creative_id" in data:
            result["creative_id"] = data["creative_id"]
    target = data.get("media_buy_id") or data.get("creative_id") or ""
    out: dict[str, Any] = {
        "idempotency_key": event.event_id,
        "operation_id": registration.operation_id
        or registration.task_id
        or registration.media_buy_id,
        "task_id": data.get("task_id") or registration.task_id or registration.media_buy_id,
        "task_type": registration.task_type,
        "protocol": "media-buy",
        "status": status,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "message": f"{TITLES[event.event_type]}: {target}".rstrip(": "),
        "result": result,
        "event_type": event.event_type,
    }
    if token:
        out["token"] = token
    return out

"""Events written with their changes, Slack messages, AdCP push notifications, campaign
completion, the lifespan worker and the seed-002 notification REST API (drafts and
email over a local SMTP server)."""

from __future__ import annotations

import json
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from adcp.validation.schema_loader import get_named_validator
from sqlmodel import select

from adcp_agent.db.models import AuditLog
from adcp_agent.db.models_events import OutboxEvent
from adcp_agent.db.models_media import MediaBuy
from adcp_agent.services import outbox
from adcp_agent.services.webhook_signing import verify_signature
from tests.media_helpers import guaranteed, non_guaranteed
from tests.notifications_support import (
    Clock,
    Publisher,
    Receiver,
    SmtpReceiver,
    deliver_all,
    eventually,
    publisher,
)
from tests.tenant_admin_support import error_of

LOCAL = {"allow_private_webhooks": ["127.0.0.1/32"]}
HMAC_SECRET = "buyer-shared-secret-0123456789abcdef"


async def test_event_commits_or_rolls_back_with_its_change(tmp_path: Path) -> None:
    async with publisher(tmp_path) as pub:
        db = pub.api.state.db
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                await outbox.emit(
                    session,
                    tenant_id="pub",
                    event_type="creative.approved",
                    payload={"creative_id": "cr_1"},
                )
                raise RuntimeError("the change failed")
        with pytest.raises(ValueError, match="unknown event type"):
            async with db.transaction() as session:
                await outbox.emit(session, tenant_id="pub", event_type="made.up", payload={})
        assert await pub.events() == []


async def test_failing_create_writes_failed_and_never_created(tmp_path: Path) -> None:
    async with publisher(tmp_path) as pub:
        patched = await pub.api.request(
            "PATCH", "/tenants/pub", json={"adapter_config": {"fail_on": ["create_order"]}}
        )
        assert patched.status_code == 200, patched.text
        failed = await pub.mcp("create_media_buy", non_guaranteed(budget=1000))
        events = await pub.events()
        async with pub.api.state.db.session() as session:
            buys = (await session.exec(select(MediaBuy))).all()
            audits = (
                await session.exec(
                    select(AuditLog).where(AuditLog.action == "media_buy.create_failed")
                )
            ).all()
        draft = await pub.api.client.get(
            f"/api/notifications/draft/by-media-buy/{events[0].media_buy_id}",
            headers={"x-adcp-auth": pub.token},
        )
    assert failed["errors"][0]["code"] == "SERVICE_UNAVAILABLE"
    assert [e.event_type for e in events] == ["media_buy.failed"]
    assert buys == [] and len(audits) == 1
    assert audits[0].target_id == events[0].media_buy_id
    data = events[0].payload
    assert data["state"] == "failed" and data["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert data["product_ids"] == ["display_run_of_site"]
    assert draft.status_code == 200 and "failed" in draft.json()["subject"]


async def test_slack_gets_readable_messages(tmp_path: Path) -> None:
    async with Receiver() as slack:
        features = {
            **LOCAL,
            "slack_webhook_url": slack.url("/services/T0/B0/x"),
            "account_approval": "manual",
        }
        async with publisher(tmp_path, features) as pub:
            submitted = await pub.mcp("create_media_buy", guaranteed(budget=20000))
            await pub.mcp(
                "sync_accounts",
                {
                    "accounts": [
                        {
                            "brand": {"domain": "newbrand.example"},
                            "operator": "newbrand.example",
                            "billing": "advertiser",
                        }
                    ]
                },
            )
            types = [e.event_type for e in await pub.events()]
            await deliver_all(pub)
    assert submitted["status"] == "submitted"
    assert types == ["media_buy.approval_required", "config_approval_required"]
    # Deliveries go out concurrently: tell the two messages apart by what they say.
    first, second = sorted(
        (json.loads(r.body) for r in slack.requests),
        key=lambda m: "Media buy needs approval" not in m["blocks"][0]["text"]["text"],
    )
    assert {r.path for r in slack.requests} == {"/services/T0/B0/x"}
    header, section, actions, context = first["blocks"]
    assert header["text"]["text"] == "🔔 Media buy needs approval"
    fields = {
        f["text"].split("\n")[0].strip("*"): f["text"].split("\n")[1] for f in section["fields"]
    }
    assert fields["Buyer"] == "Acme Media (pub_buyer)"
    assert fields["Budget"] == "20,000.00 USD"
    assert fields["Products"] == "ctv_sports_premium"
    assert " → " in fields["Flight"] and fields["Task"] == submitted["task_id"]
    assert actions["elements"][0]["url"].endswith("/api/v1/tenant-management/approvals")
    assert "20,000.00 USD" in first["text"] and context["elements"][0]["text"].startswith("event")
    assert second["blocks"][0]["text"]["text"] == "⚙️ Approval required by configuration"
    assert "newbrand.example" in second["text"]


async def test_push_notifications_follow_the_buyers_config(tmp_path: Path) -> None:
    validator = get_named_validator("core/mcp-webhook-payload.json", version="3.1")
    assert validator is not None
    async with Receiver() as buyer, publisher(tmp_path, LOCAL) as pub:
        args = guaranteed()
        args["push_notification_config"] = {
            "url": buyer.url("/adcp/tasks"),
            "operation_id": "op_cmb_0001",
            "token": "echo-token-0123456789",
            "authentication": {"schemes": ["HMAC-SHA256"], "credentials": HMAC_SECRET},
        }
        submitted = await pub.mcp("create_media_buy", args)
        refused = await pub.mcp(
            "create_media_buy",
            {**guaranteed(), "push_notification_config": {"url": "http://10.9.8.7/hook"}},
        )
        approved = await pub.api.request("POST", f"/approvals/{submitted['task_id']}/approve")
        media_buy_id = approved.json()["media_buy_id"]
        await pub.mcp("update_media_buy", {"media_buy_id": media_buy_id, "paused": True})
        bearer = {
            "url": buyer.url("/adcp/updates"),
            "authentication": {"schemes": ["Bearer"], "credentials": "b" * 40},
        }
        await pub.mcp(
            "update_media_buy",
            {"media_buy_id": media_buy_id, "paused": False, "push_notification_config": bearer},
        )
        types = [e.event_type for e in await pub.events(media_buy_id=media_buy_id)]
        await deliver_all(pub)
    assert refused["errors"][0]["field"] == "push_notification_config.url"
    assert types == ["media_buy.approval_required", "media_buy.approved", "media_buy.activated"]
    # approval_required was the synchronous answer: not pushed. Each event goes to the
    # config registered when it happened; deliveries run concurrently, so sort by path.
    first, second = sorted(buyer.requests, key=lambda r: r.path)
    assert first.path == "/adcp/tasks"
    assert verify_signature(HMAC_SECRET, first.headers, first.body)
    assert first.headers["x-adcp-signature"].startswith("sha256=")
    payload = json.loads(first.body)
    assert [e.message for e in validator.iter_errors(payload)] == []
    assert payload["operation_id"] == "op_cmb_0001" and payload["token"] == "echo-token-0123456789"
    assert payload["task_id"] == submitted["task_id"] and payload["status"] == "completed"
    assert payload["idempotency_key"] == first.headers["x-adcp-event-id"]
    assert payload["result"]["media_buy_id"] == media_buy_id
    assert second.path == "/adcp/updates"
    assert second.headers["authorization"] == "Bearer " + "b" * 40
    resumed = json.loads(second.body)
    assert [e.message for e in validator.iter_errors(resumed)] == []
    assert resumed["task_type"] == "update_media_buy" and resumed["operation_id"] == media_buy_id


async def test_campaign_completed_is_emitted_once_per_buy(tmp_path: Path) -> None:
    async with publisher(tmp_path) as pub:
        media_buy_id = (await pub.mcp("create_media_buy", non_guaranteed()))["media_buy_id"]
        async with pub.api.state.db.session() as session:
            buy = await session.get(MediaBuy, media_buy_id)
        assert buy is not None
        # (A minute before the end: the flight may end on a whole minute.)
        before_end, after_end = Clock(buy.end_time - timedelta(minutes=1)), Clock(buy.end_time)
        after_end.advance(1)
        first, second = pub.worker(after_end), pub.worker(after_end)
        try:
            early = await pub.worker(before_end).check_campaigns()
            counts = [await first.check_campaigns(), await second.check_campaigns()]
        finally:
            await first.stop()
            await second.stop()
        completed = await pub.events(event_type="campaign.completed")
    assert early == 0 and counts == [1, 0]
    [event] = completed
    assert event.media_buy_id == media_buy_id and event.principal_id == "pub_buyer"
    assert event.dedupe_key == f"campaign.completed:{media_buy_id}"


async def test_a_completion_announced_elsewhere_is_recorded_not_repeated(
    tmp_path: Path,
) -> None:
    """A campaign.completed event written without the buy's marker (by a server from
    before migration 0016, during a rolling upgrade) is not emitted twice, and the buy
    is marked so the flight-end scan stops returning it; later buys are announced."""
    async with publisher(tmp_path) as pub:
        db = pub.api.state.db
        old_id = (await pub.mcp("create_media_buy", non_guaranteed()))["media_buy_id"]
        new_id = (await pub.mcp("create_media_buy", non_guaranteed()))["media_buy_id"]
        async with db.transaction() as session:
            buy = await session.get(MediaBuy, old_id)
            assert buy is not None
            await outbox.emit(
                session,
                tenant_id=buy.tenant_id,
                event_type="campaign.completed",
                payload={"media_buy_id": old_id},
                principal_id=buy.principal_id,
                media_buy_id=old_id,
                dedupe_key=f"campaign.completed:{old_id}",
            )
        after_end = Clock(buy.end_time)
        after_end.advance(1)
        worker = pub.worker(after_end)
        try:
            counts = [await worker.check_campaigns(), await worker.check_campaigns()]
        finally:
            await worker.stop()
        completed = await pub.events(event_type="campaign.completed")
        async with db.session() as session:
            marked = {
                b.media_buy_id: b.completion_announced_at
                for b in (await session.exec(select(MediaBuy))).all()
            }
    assert counts == [1, 0]
    assert sorted(e.media_buy_id for e in completed) == sorted([old_id, new_id])
    assert marked[old_id] is not None and marked[new_id] is not None


async def test_the_lifespan_worker_delivers_on_its_own(tmp_path: Path) -> None:
    async with (
        Receiver() as receiver,
        publisher(tmp_path, LOCAL, outbox_worker=True, outbox_poll_seconds=0.02) as pub,
    ):
        await pub.api.request("POST", "/tenants/pub/webhooks", json={"url": receiver.url()})
        await pub.mcp("create_media_buy", non_guaranteed())

        async def delivered() -> bool:
            return [e.status for e in await pub.events()] == ["delivered"]

        await eventually(delivered)
    assert len(receiver.requests) == 1


async def test_notification_rest_api_drafts_and_email(tmp_path: Path) -> None:
    async with SmtpReceiver() as smtp:
        settings = {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_security": "none",
            "smtp_from": "ads@pub.example",
        }
        features = {"notification_emails": ["ops@pub.example", "sales@pub.example"]}
        async with publisher(tmp_path, features, **settings) as pub:
            other = await pub.api.create_principal("pub", principal_id="pub_other")
            client, mine = pub.api.client, {"Authorization": f"Bearer {pub.token}"}
            admin = {"X-Tenant-Management-API-Key": pub.api.key}
            media_buy_id = (await pub.mcp("create_media_buy", non_guaranteed()))["media_buy_id"]
            anonymous = await client.get("/api/notifications/config")
            config = await client.get("/api/notifications/config", headers=mine)
            admin_no_tenant = await client.get("/api/notifications/config", headers=admin)
            admin_config = await client.get(
                "/api/notifications/config", params={"tenant_id": "pub"}, headers=admin
            )
            by_buy = await client.get(
                f"/api/notifications/draft/by-media-buy/{media_buy_id}", headers=mine
            )
            draft_id = by_buy.json()["draftId"]
            by_id = await client.get(f"/api/notifications/draft/{draft_id}", headers=mine)
            fallback = await client.get(f"/api/notifications/draft/{media_buy_id}", headers=admin)
            hidden = await client.get(
                f"/api/notifications/draft/{draft_id}",
                headers={"x-adcp-auth": other["access_token"]},
            )
            missing_field = await client.post(
                "/api/notifications/send-email", json={}, headers=mine
            )
            sent = await client.post(
                "/api/notifications/send-email", json={"draftId": draft_id}, headers=mine
            )
            again = await client.post(
                "/api/notifications/send-email", json={"draftId": draft_id}, headers=mine
            )
            after = await client.get(f"/api/notifications/draft/{draft_id}", headers=mine)
    assert anonymous.status_code == 401
    body = config.json()
    assert body["email"]["enabled"] and body["email"]["recipientCount"] == 2
    assert not body["slack"]["enabled"] and "media_buy.created" in body["eventTypes"]
    assert admin_no_tenant.status_code == 400 and admin_config.json()["tenantId"] == "pub"
    draft = by_buy.json()
    assert draft["mediaBuyId"] == media_buy_id and draft["eventType"] == "media_buy.created"
    assert draft["status"] == "draft" and "5,000.00 USD" in draft["body"]
    assert media_buy_id in draft["subject"]
    assert by_id.json() == draft and fallback.json()["draftId"] == draft_id
    assert hidden.status_code == 404
    assert error_of(missing_field)["details"]["field"] == "draftId"
    assert sent.status_code == 200, sent.text
    assert sent.json()["success"] and sent.json()["emailId"].startswith("<")
    assert again.status_code == 400 and error_of(again)["code"] == "INVALID_STATE"
    assert after.json()["status"] == "sent" and after.json()["emailId"] == sent.json()["emailId"]
    [(sender, rcpts, raw)] = smtp.messages
    message = message_from_bytes(raw)
    assert sender == "ads@pub.example"
    assert rcpts == ["ops@pub.example", "sales@pub.example"]
    assert media_buy_id in str(make_header(decode_header(message["Subject"])))
    assert message["Message-ID"] == sent.json()["emailId"]
    assert isinstance(await _stored_event(pub, draft["eventId"]), OutboxEvent)


async def _stored_event(pub: Publisher, event_id: str) -> OutboxEvent | None:
    async with pub.api.state.db.session() as session:
        return await session.get(OutboxEvent, event_id)

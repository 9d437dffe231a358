"""sync_creatives push_notification_config: the buyer hears the publisher's review
decisions on the creatives it synced — each as AdCP's webhook envelope for the
sync_creatives task, signed as the buyer asked; creatives synced without a config (or
by another buyer) are not pushed to it."""

from __future__ import annotations

import json
from pathlib import Path

from adcp.validation.schema_loader import get_named_validator

from tests.creative_helpers import display, sync_args
from tests.notifications_support import Receiver, deliver_all, publisher
from tests.support import assert_valid

MANUAL_AND_LOCAL = {"creative_approval": "manual", "allow_private_webhooks": ["127.0.0.1/32"]}
BEARER = "p" * 40


async def test_review_decisions_reach_the_buyers_sync_config(tmp_path: Path) -> None:
    validator = get_named_validator("core/mcp-webhook-payload.json", version="3.1")
    assert validator is not None
    async with Receiver() as buyer, publisher(tmp_path, MANUAL_AND_LOCAL) as pub:
        config = {
            "url": buyer.url("/adcp/creatives"),
            "token": "creative-token-0123456789",
            "authentication": {"schemes": ["Bearer"], "credentials": BEARER},
        }
        synced = await pub.mcp(
            "sync_creatives",
            sync_args([display("cp_ok"), display("cp_no")], push_notification_config=config),
        )
        unwatched = await pub.mcp("sync_creatives", sync_args([display("cp_quiet")]))
        refused = await pub.mcp(
            "sync_creatives",
            sync_args([display("cp_x")], push_notification_config={"url": "http://10.1.2.3/h"}),
        )
        queue = (await pub.api.request("GET", "/creatives/review?tenant_id=pub")).json()
        ids = {c["creative_id"]: c["id"] for c in queue["creatives"]}
        await pub.api.request("POST", f"/creatives/{ids['cp_ok']}/approve")
        await pub.api.request(
            "POST", f"/creatives/{ids['cp_no']}/reject", json={"reason": "Blurry"}
        )
        await pub.api.request("POST", f"/creatives/{ids['cp_quiet']}/approve")
        await deliver_all(pub)
    assert_valid("sync_creatives", synced)
    assert [c["status"] for c in synced["creatives"]] == ["pending_review", "pending_review"]
    assert unwatched["creatives"][0]["status"] == "pending_review"
    assert refused["errors"][0]["field"] == "push_notification_config.url"
    assert "cp_x" not in ids  # refused before anything was synced
    payloads = sorted((json.loads(r.body) for r in buyer.requests), key=lambda p: p["message"])
    assert len(payloads) == 2  # cp_quiet's decision had no config to go to
    for request in buyer.requests:
        assert request.path == "/adcp/creatives"
        assert request.headers["authorization"] == f"Bearer {BEARER}"
    decided = {}
    for payload in payloads:
        assert [e.message for e in validator.iter_errors(payload)] == []
        assert payload["task_type"] == "sync_creatives" and payload["status"] == "completed"
        assert payload["token"] == "creative-token-0123456789"
        [creative] = payload["result"]["creatives"]
        decided[creative["creative_id"]] = creative["status"]
    assert decided == {"cp_ok": "approved", "cp_no": "rejected"}
    assert len({p["task_id"] for p in payloads}) == 1  # both answer the one sync

"""What people read: Slack messages and email drafts rendered from an outbox event.

One summary (title + labelled facts + a link) per event type feeds both channels, so a
Slack post and the email about the same event never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TITLES: dict[str, str] = {
    "media_buy.created": "🎉 Media buy created and activated",
    "media_buy.approval_required": "🔔 Media buy needs approval",
    "config_approval_required": "⚙️ Approval required by configuration",
    "media_buy.approved": "✅ Media buy approved",
    "media_buy.rejected": "🚫 Media buy rejected",
    "media_buy.failed": "❌ Media buy failed",
    "media_buy.activated": "🚀 Campaign went live",
    "creative.approved": "🖼️ Creative approved",
    "creative.rejected": "⛔ Creative rejected",
    "campaign.completed": "🏁 Campaign completed",
}


@dataclass(frozen=True)
class Summary:
    title: str
    facts: list[tuple[str, str]]
    link: str | None
    link_label: str


def _money(data: Mapping[str, Any]) -> str | None:
    budget = data.get("total_budget")
    if not isinstance(budget, int | float):
        return None
    return f"{budget:,.2f} {data.get('currency') or 'USD'}"


def _day(value: Any) -> str:
    return str(value)[:10] if value else "?"


def summarize(
    event_type: str,
    data: Mapping[str, Any],
    *,
    tenant_name: str,
    principal_name: str | None,
    base_url: str,
) -> Summary:
    """The facts a publisher's ad ops (or a buyer) needs to act on the event."""
    facts: list[tuple[str, str]] = [("Publisher", tenant_name)]
    principal_id = data.get("principal_id")
    if principal_name or principal_id:
        who = principal_name or str(principal_id)
        if principal_name and principal_id:
            who = f"{principal_name} ({principal_id})"
        facts.append(("Buyer", who))
    for label, key in (
        ("Media buy", "media_buy_id"),
        ("Creative", "creative_id"),
        ("Account", "account_id"),
        ("Brand", "brand_domain"),
        ("Operator", "operator"),
        ("PO number", "po_number"),
        ("Task", "task_id"),
    ):
        if data.get(key):
            facts.append((label, str(data[key])))
    money = _money(data)
    if money:
        facts.append(("Budget", money))
    if data.get("start_time") or data.get("end_time"):
        facts.append(("Flight", f"{_day(data.get('start_time'))} → {_day(data.get('end_time'))}"))
    products = data.get("product_ids")
    if isinstance(products, list) and products:
        facts.append(("Products", ", ".join(str(p) for p in products)))
    for label, key in (("Reason", "reason"), ("Approval", "approval_reason")):
        if data.get(key):
            facts.append((label, str(data[key])))
    error = data.get("error")
    if isinstance(error, Mapping):
        facts.append(("Error", f"{error.get('code', 'ERROR')}: {error.get('message', '')}"))
    elif error:
        facts.append(("Error", str(error)))
    base = base_url.rstrip("/")
    link: str | None = None
    label = "View details"
    if event_type in ("media_buy.approval_required", "config_approval_required"):
        link, label = f"{base}/api/v1/tenant-management/approvals", "Open the approval queue"
    elif data.get("media_buy_id"):
        link = f"{base}/api/notifications/draft/by-media-buy/{data['media_buy_id']}"
    return Summary(TITLES.get(event_type, event_type), facts, link, label)


def slack_message(summary: Summary, event_id: str) -> dict[str, Any]:
    """Slack incoming-webhook body: ``text`` for notifications and old clients, blocks
    for the channel view (a header, the facts as fields, a button, the event id)."""
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in summary.facts[:10]]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": summary.title[:150]}},
        {"type": "section", "fields": fields},
    ]
    if summary.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": summary.link_label},
                        "url": summary.link,
                    }
                ],
            }
        )
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"event `{event_id}`"}]}
    )
    facts = "; ".join(f"{k}: {v}" for k, v in summary.facts)
    return {"text": f"{summary.title} — {facts}", "blocks": blocks}


def email(summary: Summary, event_id: str) -> tuple[str, str]:
    """Subject and plain-text body of the email draft."""
    media_buy = dict(summary.facts).get("Media buy") or dict(summary.facts).get("Creative")
    subject = summary.title + (f": {media_buy}" if media_buy else "")
    width = max(len(k) for k, _ in summary.facts)
    lines = [summary.title, ""]
    lines += [f"{k.ljust(width)}  {v}" for k, v in summary.facts]
    if summary.link:
        lines += ["", f"{summary.link_label}: {summary.link}"]
    lines += ["", f"Event id: {event_id}"]
    return subject, "\n".join(lines) + "\n"

"""The publisher's first-party signals (audiences, contexts) and their activation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from adcp_agent.db.engine import Database
from adcp_agent.db.models import Signal, SignalActivation
from adcp_agent.errors import AdcpError
from adcp_agent.services import audit, catalog
from adcp_agent.services.identity import Caller
from adcp_agent.services.ranking import bm25_rank


@dataclass(frozen=True)
class SignalMatch:
    signal: Signal
    score: float
    activated_destinations: list[dict[str, Any]]


async def search_signals(
    db: Database,
    caller: Caller,
    *,
    query: str | None,
    signal_types: Sequence[str] = (),
    signal_ids: Sequence[str] = (),
    max_cpm: float | None = None,
) -> list[SignalMatch]:
    # The tenant's signals and their ranking documents come from the catalog cache
    # (tokenized once per catalog version); the caller's activations from the database.
    cat = await catalog.tenant_catalog(db, caller)
    rows = [
        s
        for s in cat.signals.values()
        if (not signal_types or s.signal_type in signal_types)
        and (not signal_ids or s.signal_id in signal_ids)
        and (max_cpm is None or s.cpm <= max_cpm)
    ]
    activations: dict[str, list[dict[str, Any]]] = {}
    if caller.principal_id:
        async with db.reading() as session:
            acts = await session.exec(
                select(SignalActivation).where(
                    SignalActivation.tenant_id == caller.tenant_id,
                    SignalActivation.principal_id == caller.principal_id,
                )
            )
            for act in acts.all():
                activations.setdefault(act.signal_id, []).append(act.destination)
    docs = [cat.signal_documents[r.signal_id] for r in rows]
    scores = bm25_rank(query or "", docs)
    matches = [
        SignalMatch(r, s.score, activations.get(r.signal_id, []))
        for r, s in zip(rows, scores, strict=True)
    ]
    if query and any(m.score > 0 for m in matches):
        matches = [m for m in matches if m.score > 0]
        matches.sort(key=lambda m: (-m.score, m.signal.signal_id))
    return matches


def destination_key(destination: dict[str, Any]) -> str:
    canonical = json.dumps(destination, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def activation_key_for(signal_id: str, principal_id: str) -> dict[str, Any]:
    """The key a buyer targets once the segment is live on our own ad server."""
    return {"type": "key_value", "key": "adcp_seg", "value": f"{signal_id}"}


@dataclass(frozen=True)
class Activation:
    signal: Signal
    destination: dict[str, Any]
    activation_key: dict[str, Any]
    newly_activated: bool


def pricing_option_id(signal: Signal) -> str:
    """A signal's one pricing option (its CPM), as get_signals lists it."""
    return f"{signal.signal_id}_cpm"


async def activate(
    db: Database,
    caller: Caller,
    signal_id: str,
    destinations: Sequence[dict[str, Any]],
    pricing_option: str | None = None,
    governance_context: str | None = None,
) -> list[Activation]:
    """Record the activation for each destination. Idempotent: activating again returns
    the existing activation and writes nothing — also when two identical calls race (the
    loser's insert hits the unique key, and its retry reads the winner's row).
    ``pricing_option``, when given, must be the signal's (AdCP's pricing commitment).
    ``governance_context`` (a governed account's) is kept with the activation; a newer
    one replaces it."""
    args = (db, caller, signal_id, destinations, pricing_option, governance_context)
    try:
        return await _activate(*args)
    except IntegrityError:
        return await _activate(*args)


async def _activate(
    db: Database,
    caller: Caller,
    signal_id: str,
    destinations: Sequence[dict[str, Any]],
    pricing_option: str | None,
    governance_context: str | None,
) -> list[Activation]:
    principal_id = caller.require_principal()
    if not destinations:
        raise AdcpError(
            "INVALID_REQUEST", "At least one destination is required.", field="destinations"
        )
    async with db.transaction() as session:
        signal = (
            await session.exec(
                select(Signal).where(
                    Signal.tenant_id == caller.tenant_id, Signal.signal_id == signal_id
                )
            )
        ).first()
        if signal is None:
            raise AdcpError(
                "SIGNAL_NOT_FOUND",
                f"Signal '{signal_id}' does not exist in this publisher's catalog.",
                field="signal_agent_segment_id",
                suggestion="Call get_signals to list available signal ids.",
            )
        if pricing_option is not None and pricing_option != pricing_option_id(signal):
            raise AdcpError(
                "VALIDATION_ERROR",
                f"'{pricing_option}' is not a pricing option of signal '{signal_id}'.",
                field="pricing_option_id",
                suggestion=f"Its pricing option: '{pricing_option_id(signal)}' "
                f"({signal.cpm:,.2f} USD CPM).",
            )
        out: list[Activation] = []
        for dest in destinations:
            key = destination_key(dest)
            existing = (
                await session.exec(
                    select(SignalActivation).where(
                        SignalActivation.tenant_id == caller.tenant_id,
                        SignalActivation.principal_id == principal_id,
                        SignalActivation.signal_id == signal_id,
                        SignalActivation.destination_key == key,
                    )
                )
            ).first()
            if existing is not None:
                if governance_context and existing.governance_context != governance_context:
                    existing.governance_context = governance_context
                    session.add(existing)
                out.append(Activation(signal, dest, existing.activation_key, False))
                continue
            act = SignalActivation(
                tenant_id=caller.tenant_id,
                principal_id=principal_id,
                signal_id=signal_id,
                destination_key=key,
                destination=dest,
                activation_key=activation_key_for(signal_id, principal_id),
                governance_context=governance_context,
            )
            session.add(act)
            await audit.record(
                session,
                caller,
                "signal.activate",
                target_type="signal",
                target_id=signal_id,
                after={"destination": dest, "pricing_option_id": pricing_option_id(signal)},
            )
            out.append(Activation(signal, dest, act.activation_key, True))
        await session.flush()
    return out

"""One buyer's journey, in three acts that the conductor runs for every buyer at once:
``setup`` (discover, target, plan, book, get approved, traffic creatives), ``on_day``
(read the day's delivery, give feedback, pause and resume) and ``finish`` (the report).
The clock is shared by every buyer, so only the conductor moves it, between acts."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from simulations import planning
from simulations.buyer import BuyerSession, JsonObject, describe_error
from simulations.creative_builder import build_creative
from simulations.errors import JourneyFailed, Refused
from simulations.records import BuyKind, BuyRun, Flight, PackageRun, iso
from simulations.scenarios import BuyerPlan, Scenario
from simulations.server import AdminApi
from simulations.turns import Turns

_DELIVERY = {"guaranteed": "guaranteed", "auction": "non_guaranteed"}
# Times a buyer refused for inventory another buyer just took checks avails and books again.
REBOOKINGS = 2
FINAL_FIELDS = (
    "impressions",
    "spend",
    "clicks",
    "ctr",
    "cpm",
    "completed_views",
    "completion_rate",
    "delivery_status",
    "pacing_index",
)


class BuyerJourney:
    """One buyer: its plan, its MCP session, and what it has bought and seen so far."""

    def __init__(
        self,
        name: str,
        scenario: Scenario,
        plan: BuyerPlan,
        session: BuyerSession,
        admin: AdminApi,
        flight: Flight,
        run_id: str,
        turns: Turns | None = None,
        number: int = 1,
    ) -> None:
        self.name, self.scenario, self.plan = name, scenario, plan
        self.turns, self.number = turns or Turns(), number
        self.session, self.admin, self.flight = session, admin, flight
        self.schedule = scenario.schedule(flight.days)
        self.run_id = run_id
        self.formats: dict[str, JsonObject] = {}
        self.offers: dict[str, list[JsonObject]] = {}
        self.signal_id = ""
        self.avails: dict[str, JsonObject] = {}
        self.guaranteed_offers: list[JsonObject] = []
        self.buys: list[BuyRun] = []
        self.feedback: list[JsonObject] = []
        self.problems: list[str] = []
        self.checks: dict[str, bool] = {}
        self.failure: str | None = None
        self._serial = itertools.count(1)

    def key(self, what: str) -> str:
        """Idempotency keys unique to this run: a rerun with the same seed must book new
        buys, not replay the old ones."""
        return f"sim-{self.run_id}-{self.name}-{what}-{next(self._serial):03d}"

    def buy(self, kind: BuyKind) -> BuyRun:
        return next(b for b in self.buys if b.kind == kind)

    # -- act one ------------------------------------------------------------------------

    async def setup(self) -> None:
        try:
            await self._discover()
            await self._signal()
            guaranteed, auction = await self._plan()
            async with self.turns.turn(self.number):  # buyers compete for inventory
                await self._book(guaranteed, auction)
        finally:
            await self.turns.leave(self.number)
        await self._approve()
        await self._traffic()

    async def _discover(self) -> None:
        s = self.session
        caps = await s.call(
            "discovery",
            "get_adcp_capabilities",
            {},
            facts=lambda d: {
                "protocols": d.get("supported_protocols"),
                "specialisms": d.get("specialisms"),
            },
        )
        if "media_buy" not in caps.get("supported_protocols", []):
            raise JourneyFailed(f"{self.name}: the agent does not sell media buys: {caps}")
        formats = await s.call(
            "discovery",
            "list_creative_formats",
            {},
            facts=lambda d: {"formats": sorted(f["format_id"]["id"] for f in d.get("formats", []))},
        )
        self.formats = {f["format_id"]["id"]: f for f in formats.get("formats", [])}
        window = {
            "start_date": self.flight.day(1).isoformat(),
            "end_date": self.flight.last_day.isoformat(),
        }
        for brief in self.scenario.briefs:
            args: dict[str, Any] = {"brief": brief.text}
            if brief.role != "explore":
                args["filters"] = {"delivery_type": _DELIVERY[brief.role], **window}
            if brief.format_types:
                args.setdefault("filters", {})["format_types"] = list(brief.format_types)
            found = await s.call(
                "discovery",
                "get_products",
                args,
                label=f"brief: {brief.text}",
                facts=lambda d: {"products": planning.ids(d.get("products", []), "product_id")},
            )
            if brief.role != "explore":
                self.offers[brief.role] = found.get("products", [])

    async def _signal(self) -> None:
        spec = self.scenario.signal_spec
        found = await self.session.call(
            "signals",
            "get_signals",
            {"signal_spec": spec},
            label=f"signals for '{spec}'",
            facts=lambda d: {
                "signals": planning.ids(d.get("signals", []), "signal_agent_segment_id")
            },
        )
        if not found.get("signals"):
            raise JourneyFailed(f"{self.name}: get_signals offered nothing for '{spec}'")
        self.signal_id = str(found["signals"][0]["signal_agent_segment_id"])
        await self.session.call(
            "signals",
            "activate_signal",
            {"signal_agent_segment_id": self.signal_id},
            label=f"activate {self.signal_id}",
            facts=lambda d: {"live": [x.get("is_live") for x in d.get("deployments", [])]},
        )

    async def _plan(self) -> tuple[PackageRun, list[PackageRun]]:
        """Check avails for the best offers, then size the buys: the guaranteed budget
        must clear the product's minimum and fit what the flight can deliver."""
        g_offers = [
            p for p in self.offers.get("guaranteed", []) if planning.option(p, "fixed_price")
        ]
        a_offers = [p for p in self.offers.get("auction", []) if planning.option(p, "floor_price")]
        a_offers = a_offers[: self.scenario.auction_packages]
        if not g_offers or not a_offers:
            raise JourneyFailed(
                f"{self.name}: discovery found no "
                + ("guaranteed" if not g_offers else "auction")
                + " product that can run in this flight"
            )
        self.guaranteed_offers = g_offers[:3]
        await self._avails("planning", self.guaranteed_offers + a_offers)
        auction = [
            planning.auction_package(i, a, self.plan, self.signal_id, self.formats)
            for i, a in enumerate(a_offers)
        ]
        return self._guaranteed(), auction

    async def _avails(self, phase: str, offers: list[JsonObject], label: str = "") -> None:
        avails = await self.session.call(
            phase,
            "get_avails",
            {
                "product_ids": planning.ids(offers, "product_id"),
                "flight_start_date": self.flight.day(1).isoformat(),
                "flight_end_date": self.flight.last_day.isoformat(),
                "targeting_overlay": {"signals": [self.signal_id]},
            },
            label=label,
            facts=lambda d: {"products": planning.ids(d.get("packages", []), "product_id")},
        )
        self.avails.update({str(r["product_id"]): r for r in avails.get("packages", [])})

    def _guaranteed(self) -> PackageRun:
        offers = self.guaranteed_offers
        p, sig, formats = self.plan, self.signal_id, self.formats
        guaranteed = planning.guaranteed_package(offers, self.avails, p, sig, formats)
        if guaranteed is None:
            raise JourneyFailed(
                f"{self.name}: none of {planning.ids(offers, 'product_id')} can deliver its "
                f"minimum spend in {self.flight.day(1)}..{self.flight.last_day} (get_avails)"
            )
        return guaranteed

    async def _book(self, guaranteed: PackageRun, auction: list[PackageRun]) -> None:
        for buy in (BuyRun("guaranteed", [guaranteed]), BuyRun("auction", auction)):
            self.buys.append(buy)
            for attempt in range(1, REBOOKINGS + 2):
                try:
                    answer = await self._create(buy, retry=attempt <= REBOOKINGS)
                    break
                except Refused:
                    # Another buyer booked that inventory since get_avails: check again
                    # and buy what is left (or the next offer that can still deliver).
                    await self._avails("buying", self.guaranteed_offers, "avails again")
                    buy.packages = [self._guaranteed()]
            if answer.get("status") == "submitted":
                buy.task_id = str(answer["task_id"])
            else:
                self._adopt(buy, answer)

    async def _create(self, buy: BuyRun, *, retry: bool) -> JsonObject:
        """Book ``buy``; with ``retry``, PRODUCT_UNAVAILABLE on a guaranteed buy is
        ``Refused`` for ``_book`` to handle."""
        return await self.session.call(
            "buying",
            "create_media_buy",
            {
                "brand": {"domain": self.plan.brand},
                "buyer_ref": f"{self.name}-{buy.kind}",
                "start_time": iso(self.flight.start),
                "end_time": iso(self.flight.end),
                "idempotency_key": self.key(buy.kind),
                "packages": [_package_wire(p) for p in buy.packages],
            },
            label=f"{buy.kind} buy: " + ", ".join(p.product_id for p in buy.packages),
            facts=lambda d: {"status": d.get("status")},
            handled=("PRODUCT_UNAVAILABLE",) if retry and buy.kind == "guaranteed" else (),
        )

    def _adopt(self, buy: BuyRun, answer: JsonObject) -> None:
        """Take the ids the seller assigned (one package per product in each buy)."""
        buy.media_buy_id = str(answer["media_buy_id"])
        buy.status = str(answer.get("media_buy_status", ""))
        booked = {str(p["product_id"]): str(p["package_id"]) for p in answer.get("packages", [])}
        for pkg in buy.packages:
            if pkg.product_id not in booked:
                raise JourneyFailed(f"{self.name}: {buy.kind} buy lacks '{pkg.product_id}'")
            pkg.package_id = booked[pkg.product_id]

    async def _approve(self) -> None:
        """The publisher signs the guaranteed order (admin API); the buyer learns it from
        get_task_status, as it would in production."""
        buy = self.buy("guaranteed")
        if buy.task_id is None:
            return  # this publisher books guaranteed inventory without an IO sign-off
        await self.session.external(
            "approval",
            "admin: approve",
            "publisher approves the guaranteed order",
            self.admin.approve(buy.task_id),
            facts=lambda d: {"media_buy_state": d.get("media_buy_state")},
        )
        task = await self.session.call(
            "approval",
            "get_task_status",
            {"task_id": buy.task_id},
            facts=lambda d: {"status": d.get("status")},
        )
        if task.get("status") != "completed" or not task.get("result"):
            raise JourneyFailed(f"{self.name}: the approved task reads {task.get('status')}")
        self._adopt(buy, task["result"])

    async def _traffic(self) -> None:
        """One creative per format, built from the format's spec, assigned to every
        package that needs it."""
        creatives: dict[str, JsonObject] = {}
        assignments: list[JsonObject] = []
        for pkg in (p for b in self.buys for p in b.packages):
            pkg.creative_id = f"sim-{self.run_id}-{self.name}-{pkg.format_id}"
            creatives.setdefault(
                pkg.creative_id,
                build_creative(pkg.creative_id, self.formats[pkg.format_id], self.plan.brand),
            )
            assignments.append({"creative_id": pkg.creative_id, "package_id": pkg.package_id})
        fmt_of = {cid: c["format_id"]["id"] for cid, c in creatives.items()}
        answer = await self.session.call(
            "creatives",
            "sync_creatives",
            {
                "creatives": list(creatives.values()),
                "assignments": assignments,
                "idempotency_key": self.key("creatives"),
            },
            label=f"{len(creatives)} creatives, {len(assignments)} assignments",
            facts=lambda d: {
                "creatives": sorted(
                    [fmt_of.get(c["creative_id"]), c.get("action"), c.get("status")]
                    for c in d.get("creatives", [])
                )
            },
        )
        for item in answer.get("creatives", []):
            if item.get("action") == "failed":
                error = (item.get("errors") or [{}])[0]
                raise JourneyFailed(
                    f"{self.name}: creative {item['creative_id']} was refused: "
                    + describe_error(error)
                )
            if item.get("status") != "approved":
                raise JourneyFailed(
                    f"{self.name}: creative {item['creative_id']} is '{item.get('status')}': "
                    "it cannot deliver until the publisher approves it"
                )
            if item.get("assignment_errors"):
                raise JourneyFailed(
                    f"{self.name}: assignments of {item['creative_id']} "
                    f"failed: {item['assignment_errors']}"
                )

    # -- act two ------------------------------------------------------------------------

    async def on_day(self, day: int) -> None:
        """Read the delivery of flight day ``day`` (the clock stands at its end), then
        act on the schedule."""
        answer = await self.session.call(
            "delivery",
            "get_media_buy_delivery",
            {"media_buy_ids": [b.media_buy_id for b in self.buys]},
            label=f"day {day} delivery",
        )
        rows = {d["media_buy_id"]: d for d in answer.get("media_buy_deliveries", [])}
        for buy in self.buys:
            if buy.media_buy_id not in rows:
                raise JourneyFailed(f"{self.name}: day {day}: no delivery for {buy.kind} buy")
            row = rows[buy.media_buy_id]
            buy.status = str(row.get("status"))
            by_package = {p["package_id"]: p for p in row.get("by_package", [])}
            for pkg in buy.packages:
                point = pkg.record(day, self.flight.day(day), by_package.get(pkg.package_id, {}))
                if point.cum_spend > pkg.budget + 0.01:
                    self.problems.append(
                        f"day {day}: {pkg.key} ({pkg.product_id}) spent "
                        f"{point.cum_spend:,.2f} of a {pkg.budget:,.2f} budget"
                    )
        self.session.last.facts = {
            "statuses": [b.status for b in self.buys],
            "delivering": {
                p.key: p.days[-1].impressions > 0 for b in self.buys for p in b.packages
            },
        }
        if day in self.schedule.feedback_days:
            await self._feedback(day)
        if day == self.schedule.pause_day:
            await self._set_paused(day, True)
        if day == self.schedule.resume_day:
            await self._set_paused(day, False)
        if day == self.schedule.add_day:
            await self._add_package(day)

    async def _feedback(self, day: int) -> None:
        """The buyer's own conversion data, relative to the average package, for every
        auction package; on the first occasion also a brand-lift reading for the
        guaranteed buy."""
        buy = self.buy("auction")
        period = {
            "start": iso(self.flight.start),
            "end": iso(self.flight.start + timedelta(days=day)),
        }
        truth = self.plan.true_performance[: len(buy.planned)]
        mean = sum(truth) / len(truth)
        for pkg, performance in zip(buy.planned, truth, strict=True):
            index = round(performance / mean, 2)
            answer = await self.session.call(
                "optimisation",
                "provide_performance_feedback",
                {
                    "media_buy_id": buy.media_buy_id,
                    "package_id": pkg.package_id,
                    "performance_index": index,
                    "measurement_period": period,
                    "metric_type": "conversion_rate",
                    "feedback_source": "buyer_attribution",
                    "idempotency_key": self.key("feedback"),
                },
                label=f"day {day}: {pkg.key} converts x{index}",
                facts=lambda d: {"feedback_status": d.get("feedback_status")},
            )
            pkg.performance_index = index
            self.feedback.append(
                {
                    "day": day,
                    "package": pkg.key,
                    "performance_index": index,
                    "feedback_status": answer.get("feedback_status"),
                    "message": answer.get("message"),
                }
            )
        if day == self.schedule.feedback_days[0]:
            lift = self.plan.brand_lift_percent
            answer = await self.session.call(
                "optimisation",
                "provide_performance_feedback",
                {
                    "media_buy_id": self.buy("guaranteed").media_buy_id,
                    "feedback_type": "brand_lift",
                    "data": {"lift_percent": lift},
                    "idempotency_key": self.key("lift"),
                },
                label=f"day {day}: G1 brand lift {lift}%",
                facts=lambda d: {"performance_index": d.get("performance_index")},
            )
            self.feedback.append(
                {
                    "day": day,
                    "package": "G1",
                    "brand_lift_percent": lift,
                    "performance_index": answer.get("performance_index"),
                }
            )

    async def _set_paused(self, day: int, paused: bool) -> None:
        buy = self.buy("auction")
        tool, expected = ("pause_media_buy", "paused") if paused else ("resume_media_buy", "active")
        answer = await self.session.call(
            "pause/resume",
            tool,
            {"media_buy_id": buy.media_buy_id, "idempotency_key": self.key(tool)},
            label=f"day {day}: {tool.split('_')[0]} the auction buy",
            facts=lambda d: {"media_buy_status": d.get("media_buy_status")},
        )
        if answer.get("media_buy_status") != expected:
            raise JourneyFailed(
                f"{self.name}: after {tool} the auction buy is "
                f"'{answer.get('media_buy_status')}', not '{expected}'"
            )

    async def _add_package(self, day: int) -> None:
        """Mid-flight, the buyer doubles down on its first auction line: a second
        package of the same product, bid and budget, serving the same creative."""
        buy = self.buy("auction")
        first = buy.planned[0]
        pkg = PackageRun(
            key=f"A{len(buy.packages) + 1}",
            product_id=first.product_id,
            pricing_option_id=first.pricing_option_id,
            budget=first.budget,
            bid_price=first.bid_price,
            signals=first.signals,
            format_id=first.format_id,
            creative_id=first.creative_id,
            added_day=day,
        )
        wire = {**_package_wire(pkg), "creative_assignments": [{"creative_id": pkg.creative_id}]}
        answer = await self.session.call(
            "mid-flight",
            "update_media_buy",
            {
                "media_buy_id": buy.media_buy_id,
                "new_packages": [wire],
                "idempotency_key": self.key("add"),
            },
            label=f"day {day}: add {pkg.key} ({pkg.product_id})",
            facts=lambda d: {
                "added": [p.get("product_id") for p in d.get("affected_packages", [])]
            },
        )
        [added] = answer.get("affected_packages") or [{}]
        if not added.get("package_id"):
            raise JourneyFailed(f"{self.name}: the package added on day {day} has no id")
        pkg.package_id, pkg.start_time = str(added["package_id"]), added.get("start_time")
        for before in range(1, day + 1):  # it did not exist yet: nothing delivered
            pkg.record(before, self.flight.day(before), {})
        buy.packages.append(pkg)

    # -- act three ----------------------------------------------------------------------

    async def _history(self) -> dict[str, JsonObject]:
        """Every buy's revision history and package snapshots, as a buyer auditing the
        campaign reads them; the snapshots by package id."""
        answer = await self.session.call(
            "report",
            "get_media_buys",
            {
                "media_buy_ids": [b.media_buy_id for b in self.buys],
                "include_history": 50,
                "include_snapshot": True,
            },
            label="history and snapshots",
            facts=lambda d: {
                "actions": [
                    [h.get("action") for h in m.get("history", [])] for m in d.get("media_buys", [])
                ]
            },
        )
        listed = {m["media_buy_id"]: m for m in answer.get("media_buys", [])}
        snapshots: dict[str, JsonObject] = {}
        for buy in self.buys:
            found = listed.get(buy.media_buy_id, {})
            buy.revision = int(found.get("revision", 0))
            buy.history = [_summary(h) for h in found.get("history", [])]
            for package in found.get("packages", []):
                snapshots[package["package_id"]] = package.get("snapshot", {})
        return snapshots

    async def finish(self) -> None:
        """The flight is over: the final report of each buy, and the buyer's checks."""
        for buy in self.buys:
            answer = await self.session.call(
                "report",
                "get_media_buy_report",
                {"media_buy_id": buy.media_buy_id, "dimensions": ["date", "package"]},
                label=f"{buy.kind} buy report",
                facts=lambda d: {
                    "statuses": [r.get("status") for r in d.get("media_buy_deliveries", [])]
                },
            )
            [row] = answer.get("media_buy_deliveries", [{}])
            buy.status = str(row.get("status"))
            by_package = {p["package_id"]: p for p in row.get("by_package", [])}
            for pkg in buy.packages:
                final = by_package.get(pkg.package_id, {})
                pkg.final = {k: final[k] for k in FINAL_FIELDS if k in final}
        snapshots = await self._history()
        self.checks = {
            "every_buy_delivered": all(
                sum(p.final.get("impressions", 0) for p in b.packages) > 0 for b in self.buys
            ),
            "spend_within_budget": not self.problems
            and all(
                p.final.get("spend", 0) <= p.budget + 0.01 for b in self.buys for p in b.packages
            ),
            "every_buy_completed": all(b.status == "completed" for b in self.buys),
            # Each change the buyer and the publisher made is in the history, in order.
            "history_tells_every_revision": all(
                [h["revision"] for h in b.history] == list(range(b.revision, 0, -1))
                and b.history[-1]["action"] == "created"
                for b in self.buys
            ),
            # A package added mid-flight started when it was added, and delivered.
            "added_package_ran_from_its_day": all(
                p.start_time == iso(self.flight.start + timedelta(days=p.added_day))
                and p.final.get("impressions", 0) > 0
                for b in self.buys
                for p in b.packages
                if p.added_day is not None
            )
            and any(p.added_day for b in self.buys for p in b.packages),
            # The snapshot and the final report are the same figures.
            "snapshots_match_the_report": all(
                snapshots.get(p.package_id, {}).get("impressions") == p.final.get("impressions")
                for b in self.buys
                for p in b.packages
            ),
        }
        failed = [name for name, ok in self.checks.items() if not ok]
        if failed:
            raise JourneyFailed(
                f"{self.name}: checks failed: {', '.join(failed)}"
                + (f" ({'; '.join(self.problems)})" if self.problems else "")
            )


def _summary(entry: JsonObject) -> JsonObject:
    return {k: entry.get(k) for k in ("revision", "action", "actor", "summary")}


def _package_wire(p: PackageRun) -> JsonObject:
    wire: JsonObject = {
        "product_id": p.product_id,
        "pricing_option_id": p.pricing_option_id,
        "budget": p.budget,
        "buyer_ref": p.key,
    }
    if p.bid_price is not None:
        wire["bid_price"] = p.bid_price
    if p.signals:
        wire["targeting_overlay"] = {"signals": p.signals}
    return wire

"""``GoogleAdManagerAdapter``: the AdCP order lifecycle on a Google Ad Manager network.

A media buy is an Order, each package a LineItem, a creative a Creative associated with
lines through LineItemCreativeAssociations. State changes go through GAM's
``perform*Action`` operations (ApproveOrders, PauseOrders, ResumeOrders, ArchiveOrders,
PauseLineItems, ResumeLineItems), never by editing a status field. Creates look up what
an earlier attempt may already have booked (orders by name, lines by externalId,
creatives by advertiser and name, associations by line and creative), so a retry after a
timeout does not book twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from adcp_agent.adapter_protocol import (
    CreativeSpec,
    DeliveryRow,
    ExternalOrderState,
    Forecast,
    ForecastRequest,
    InventoryItem,
    LineAction,
    LineChange,
    LineSpec,
    OrderAction,
    OrderResult,
    OrderSpec,
)
from adcp_agent.errors import AdcpError
from adcp_agent_adapters.gam import creatives, faults, inventory, orders, reporting
from adcp_agent_adapters.gam.config import GamConfig
from adcp_agent_adapters.gam.session import PAGE_SIZE, GamSession, statement
from adcp_agent_adapters.gam.targeting import (
    CustomTargetingResolver,
    build_targeting,
    update_targeting,
)

log = logging.getLogger("adcp_agent_adapters.gam")

ORDER_ACTIONS: dict[str, list[dict[str, Any]]] = {
    "approve": [{"xsi_type": "ApproveOrders", "skipInventoryCheck": False}],
    "pause": [{"xsi_type": "PauseOrders"}],
    "resume": [{"xsi_type": "ResumeOrders", "skipInventoryCheck": False}],
    "archive": [{"xsi_type": "ArchiveOrders"}],
    # GAM has no "cancel": stop delivery, then archive (delivery history is kept).
    "cancel": [{"xsi_type": "PauseOrders"}, {"xsi_type": "ArchiveOrders"}],
}
UNAPPROVED = ("DRAFT", "PENDING_APPROVAL", "DISAPPROVED")
FINAL = ("CANCELED", "DELETED")


def _gam_id(value: str, what: str, field: str) -> int:
    if not value.isdigit():
        raise faults.error(
            "REFERENCE_NOT_FOUND",
            f"'{value}' is not a Google Ad Manager {what} id.",
            "",
            "BAD_ID",
            field=field,
        )
    return int(value)


def _from_gam_datetime(value: Any) -> datetime | None:
    if value is None or value.date is None:
        return None
    d = value.date
    zone = ZoneInfo(value.timeZoneId) if value.timeZoneId else UTC
    return datetime(d.year, d.month, d.day, value.hour or 0, value.minute or 0, tzinfo=zone)


class GoogleAdManagerAdapter:
    name: ClassVar[str] = "google_ad_manager"
    config_model: ClassVar[type[BaseModel]] = GamConfig

    def __init__(self, config: GamConfig, *, session: GamSession | None = None) -> None:
        self.config = config
        self.session = session or GamSession(config)
        self.resolver = CustomTargetingResolver(self.session)

    # --- helpers ---------------------------------------------------------------------

    def _advertiser(self, mapping: dict[str, Any]) -> int:
        raw = mapping.get("gam_advertiser_id", self.config.default_advertiser_id)
        if raw is None or not str(raw).isdigit():
            raise faults.error(
                "CONFIGURATION_ERROR",
                "The buyer has no Google Ad Manager advertiser on this network.",
                "",
                "NO_ADVERTISER",
                field="advertiser_mapping.gam_advertiser_id",
                suggestion="Map the principal to a GAM advertiser (gam_advertiser_id) or "
                "set default_advertiser_id in the tenant's adapter_config.",
            )
        return int(raw)

    async def _order(self, order_id: int) -> Any:
        found = await self.session.first(
            "OrderService", "getOrdersByStatement", "id = :id", {"id": order_id}
        )
        if found is None:
            raise faults.error(
                "REFERENCE_NOT_FOUND",
                f"Order {order_id} does not exist on the Google Ad Manager network.",
                "OrderService.getOrdersByStatement",
                "NOT_FOUND",
                field="external_order_id",
            )
        return found

    async def _line(self, order_id: int, line_id: int) -> Any:
        found = await self.session.first(
            "LineItemService",
            "getLineItemsByStatement",
            "orderId = :orderId AND id = :id",
            {"orderId": order_id, "id": line_id},
        )
        if found is None:
            raise faults.error(
                "REFERENCE_NOT_FOUND",
                f"Line item {line_id} is not in order {order_id} on Google Ad Manager.",
                "LineItemService.getLineItemsByStatement",
                "NOT_FOUND",
                field="external_line_id",
            )
        return found

    async def _line_item(self, order_id: int, line: LineSpec) -> dict[str, Any]:
        targeting = await build_targeting(
            self.resolver, self.config, line.targeting, line.implementation_config
        )
        return orders.line_item(
            line,
            order_id,
            targeting,
            timezone=self.config.network_timezone,
            now=self.session.now(),
        )

    async def _booked_lines(self, order_id: int) -> dict[str, str]:
        found = await self.session.select(
            "LineItemService",
            "getLineItemsByStatement",
            "orderId = :orderId",
            {"orderId": order_id},
        )
        return {str(li.externalId): str(li.id) for li in found if li.externalId}

    async def _book_lines(self, order_id: int, lines: tuple[LineSpec, ...]) -> dict[str, str]:
        booked = await self._booked_lines(order_id)
        todo = [line for line in lines if line.package_id not in booked]
        if todo:
            payload = [await self._line_item(order_id, line) for line in todo]
            try:
                created = await self.session.call("LineItemService", "createLineItems", payload)
            except AdcpError as exc:
                if exc.code != "CONFLICT":
                    raise
                booked = await self._booked_lines(order_id)  # an earlier attempt landed
                if any(line.package_id not in booked for line in todo):
                    raise
            else:
                booked.update({str(li.externalId): str(li.id) for li in created})
        return {line.package_id: booked[line.package_id] for line in lines}

    async def _find_order_by_name(self, name: str) -> Any:
        return await self.session.first(
            "OrderService", "getOrdersByStatement", "name = :name", {"name": name}
        )

    # --- AdServerAdapter -------------------------------------------------------------

    async def health(self) -> bool:
        try:
            network = await self.session.call("NetworkService", "getCurrentNetwork")
        except AdcpError as exc:
            log.warning("GAM health check failed: %s (%s)", exc.code, exc.details.get("gam_error"))
            return False
        if str(network.networkCode) != self.config.network_code:
            log.warning(
                "GAM credentials reach network %s, not the configured one", network.networkCode
            )
            return False
        if network.timeZone and network.timeZone != self.config.network_timezone:
            log.warning(
                "GAM network %s is in %s but network_timezone says %s",
                network.networkCode,
                network.timeZone,
                self.config.network_timezone,
            )
        return True

    async def sync_inventory(self) -> list[InventoryItem]:
        return await inventory.sync_inventory(self.session)

    async def forecast(self, request: ForecastRequest) -> Forecast:
        return await inventory.forecast(
            self.session, self.resolver, request, self.config.default_advertiser_id
        )

    async def create_order(self, spec: OrderSpec) -> OrderResult:
        advertiser = self._advertiser(spec.advertiser_mapping)
        order = orders.order(spec, advertiser, self.config.trafficker_id)
        existing = await self._find_order_by_name(order["name"])
        if existing is None:
            try:
                existing = (await self.session.call("OrderService", "createOrders", [order]))[0]
            except AdcpError as exc:
                if exc.code != "CONFLICT":
                    raise
                existing = await self._find_order_by_name(order["name"])
                if existing is None:
                    raise
        if int(existing.advertiserId) != advertiser:
            raise faults.error(
                "CONFLICT",
                f"Order '{order['name']}' already exists for another advertiser.",
                "OrderService.createOrders",
                "UniqueError.NOT_UNIQUE",
                field="media_buy_id",
            )
        order_id = int(existing.id)
        return OrderResult(str(order_id), await self._book_lines(order_id, spec.lines))

    async def find_order(self, media_buy_id: str, name: str) -> str | None:
        """The order ``create_order`` made for this media buy: found by its name, which
        carries the media buy id (``orders.named``)."""
        found = await self._find_order_by_name(orders.named(name, media_buy_id))
        return None if found is None else str(int(found.id))

    async def find_line(self, external_order_id: str, package_id: str) -> str | None:
        """The line item ``add_line`` made for this package: its ``externalId``."""
        order_id = _gam_id(external_order_id, "order", "external_order_id")
        found = await self.session.first(
            "LineItemService",
            "getLineItemsByStatement",
            "orderId = :orderId AND externalId = :externalId",
            {"orderId": order_id, "externalId": package_id},
        )
        return None if found is None else str(int(found.id))

    async def add_line(self, external_order_id: str, line: LineSpec) -> str:
        order_id = _gam_id(external_order_id, "order", "external_order_id")
        order = await self._order(order_id)
        if order.isArchived or str(order.status) in FINAL:
            raise faults.error(
                "INVALID_STATE",
                f"Order {order_id} is {'archived' if order.isArchived else order.status}.",
                "",
                str(order.status),
            )
        return (await self._book_lines(order_id, (line,)))[line.package_id]

    async def update_line(
        self, external_order_id: str, external_line_id: str, change: LineChange
    ) -> None:
        order_id = _gam_id(external_order_id, "order", "external_order_id")
        line_id = _gam_id(external_line_id, "line item", "external_line_id")
        li = await self._line(order_id, line_id)
        if li.isArchived:
            raise faults.error("INVALID_STATE", f"Line item {line_id} is archived.", "", "ARCHIVED")
        cost = str(li.costType)
        currency = str(li.costPerUnit.currencyCode)
        if change.rate is not None:
            li.costPerUnit = orders.money(change.rate, currency)
        if change.start is not None:
            when = orders.line_start(change.start, self.session.now(), self.config.network_timezone)
            li.startDateTimeType = when["startDateTimeType"]
            li.startDateTime = when.get("startDateTime")
        if change.end is not None:
            li.endDateTime = orders.gam_datetime(change.end, self.config.network_timezone)
        goal = li.primaryGoal
        lifetime = goal is not None and str(goal.goalType) == "LIFETIME"
        if change.impressions_goal is not None:
            if not lifetime or str(goal.unitType) not in ("IMPRESSIONS", "VIEWABLE_IMPRESSIONS"):
                raise faults.error(
                    "UNSUPPORTED_FEATURE",
                    f"Line item {line_id} has no lifetime impression goal to change.",
                    "",
                    "NO_IMPRESSION_GOAL",
                    field="impressions_goal",
                )
            goal.units = change.impressions_goal
        elif change.budget is not None:
            if cost == "CPD":
                start = change.start or _from_gam_datetime(li.startDateTime) or self.session.now()
                end = change.end or _from_gam_datetime(li.endDateTime) or start
                li.costPerUnit = orders.money(
                    change.budget / orders.flight_days(start, end), currency
                )
            elif lifetime:
                rate = change.rate or int(li.costPerUnit.microAmount) / 1_000_000
                goal.units = orders.goal_units_from_budget(change.budget, rate, cost)
            else:
                raise faults.error(
                    "UNSUPPORTED_FEATURE",
                    f"Line item {line_id} is a {li.lineItemType} line without a lifetime "
                    "goal: its budget cannot be changed through the goal.",
                    "",
                    "NO_BUDGET_GOAL",
                    field="budget",
                )
        if change.targeting is not None:
            await update_targeting(self.resolver, self.config, li, change.targeting)
            li.frequencyCaps = orders.frequency_caps(change.targeting.frequency_cap)
        await self.session.call("LineItemService", "updateLineItems", [li])

    async def order_action(self, external_order_id: str, action: OrderAction) -> None:
        order_id = _gam_id(external_order_id, "order", "external_order_id")
        order = await self._order(order_id)
        status = str(order.status)
        if (order.isArchived and action != "archive") or status in FINAL:
            raise faults.error(
                "INVALID_STATE",
                f"Google Ad Manager cannot {action} order {order_id}: it is "
                f"{'archived' if order.isArchived else status}.",
                "OrderService.performOrderAction",
                status,
            )
        if action == "activate":
            steps = ORDER_ACTIONS["approve" if status in UNAPPROVED else "resume"]
        else:
            steps = ORDER_ACTIONS[action]
        for step in steps:
            await self.session.call(
                "OrderService", "performOrderAction", step, statement("id = :id", {"id": order_id})
            )

    async def line_action(
        self, external_order_id: str, external_line_id: str, action: LineAction
    ) -> None:
        order_id = _gam_id(external_order_id, "order", "external_order_id")
        line_id = _gam_id(external_line_id, "line item", "external_line_id")
        li = await self._line(order_id, line_id)
        if li.isArchived:
            raise faults.error("INVALID_STATE", f"Line item {line_id} is archived.", "", "ARCHIVED")
        gam_action: dict[str, Any] = (
            {"xsi_type": "PauseLineItems"}
            if action == "pause"
            else {"xsi_type": "ResumeLineItems", "skipInventoryCheck": False}
        )
        await self.session.call(
            "LineItemService",
            "performLineItemAction",
            gam_action,
            statement("orderId = :orderId AND id = :id", {"orderId": order_id, "id": line_id}),
        )

    async def upload_creative(self, spec: CreativeSpec) -> str:
        advertiser = self._advertiser(spec.advertiser_mapping)
        name = orders.named(spec.name, spec.creative_id)
        found = await self.session.first(
            "CreativeService",
            "getCreativesByStatement",
            "advertiserId = :advertiserId AND name = :name",
            {"advertiserId": advertiser, "name": name},
        )
        if found is not None:
            return str(found.id)
        image = None
        if creatives.needs_download(spec) and spec.asset_url:
            image = await self.session.download(spec.asset_url)
        created = await self.session.call(
            "CreativeService", "createCreatives", [creatives.creative(spec, advertiser, image)]
        )
        return str(created[0].id)

    async def assign_creative(
        self, external_order_id: str, external_line_id: str, external_creative_id: str
    ) -> None:
        order_id = _gam_id(external_order_id, "order", "external_order_id")
        line_id = _gam_id(external_line_id, "line item", "external_line_id")
        creative_id = _gam_id(external_creative_id, "creative", "external_creative_id")
        await self._line(order_id, line_id)
        existing = await self.session.first(
            "LineItemCreativeAssociationService",
            "getLineItemCreativeAssociationsByStatement",
            "lineItemId = :lineItemId AND creativeId = :creativeId",
            {"lineItemId": line_id, "creativeId": creative_id},
        )
        if existing is None:
            await self.session.call(
                "LineItemCreativeAssociationService",
                "createLineItemCreativeAssociations",
                [creatives.association(line_id, creative_id)],
            )

    async def get_delivery(
        self, external_order_id: str, start: date, end: date
    ) -> list[DeliveryRow]:
        order_id = _gam_id(external_order_id, "order", "external_order_id")
        return await reporting.delivery(self.session, order_id, start, end)

    async def sync_orders(self, external_order_ids: list[str]) -> list[ExternalOrderState]:
        ids = [int(i) for i in dict.fromkeys(external_order_ids) if i.isdigit()]
        states: list[ExternalOrderState] = []
        for chunk in (ids[i : i + PAGE_SIZE] for i in range(0, len(ids), PAGE_SIZE)):
            found = await self.session.select(
                "OrderService", "getOrdersByStatement", "id IN (:ids)", {"ids": chunk}
            )
            lines = await self.session.select(
                "LineItemService", "getLineItemsByStatement", "orderId IN (:ids)", {"ids": chunk}
            )
            by_order: dict[int, dict[str, str]] = {}
            for li in lines:
                status = "ARCHIVED" if li.isArchived else str(li.status)
                by_order.setdefault(int(li.orderId), {})[str(li.id)] = status
            states += [
                ExternalOrderState(
                    external_order_id=str(o.id),
                    status="ARCHIVED" if o.isArchived else str(o.status),
                    line_statuses=by_order.get(int(o.id), {}),
                )
                for o in found
            ]
        return states

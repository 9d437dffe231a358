"""Fake ad servers on 127.0.0.1 for the adapter tests (no tests in this module).

``FakeServer`` runs a Starlette app under uvicorn in a thread, records every request the
adapter sends and can be told to fail the next matching requests. ``KevelFake`` speaks
enough of the Kevel Management API (JSON bodies, paged lists, full-object PUTs,
sub-resource geo targets, queued reports, the forecaster) for the adapter tests.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

API_KEY = "kevel-test-key-0123456789"
Reply = tuple[int, Any]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    raw_path: str = ""
    form: dict[str, str] = field(default_factory=dict)


class Sleeps(list):
    """An injected ``sleep``: records the waits instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


class FakeServer:
    def __init__(self, handle: Callable[[Seen], Reply]) -> None:
        self.handle = handle
        self.requests: list[Seen] = []
        self._faults: list[list[Any]] = []  # [method, path regex, status, headers, body, times]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def reset(self, handle: Callable[[Seen], Reply]) -> None:
        self.handle = handle
        self.requests.clear()
        self._faults.clear()

    def fail(self, method: str, path: str, status: int, *, times: int = 1, headers=None, body=None):
        self._faults.append([method, re.compile(path), status, headers or {}, body, times])

    def seen(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and re.fullmatch(path, r.path)]

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        seen = Seen(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
        )
        seen.raw_path = request.scope.get("raw_path", b"").decode("latin-1")
        ctype = request.headers.get("content-type", "")
        if raw and "json" in ctype:
            seen.json = await request.json()
        elif raw and "form" in ctype:
            seen.form = dict(parse_qsl(raw.decode()))
        self.requests.append(seen)
        for fault in self._faults:
            if fault[5] > 0 and fault[0] == seen.method and fault[1].fullmatch(seen.path):
                fault[5] -= 1
                body = fault[4] if fault[4] is not None else {"message": f"fault {fault[2]}"}
                return JSONResponse(body, status_code=fault[2], headers=fault[3])
        status, body = self.handle(seen)
        if status == 204:  # No Content: no body at all (h11 refused the JSON "null")
            return Response(status_code=204)
        return JSONResponse(body, status_code=status)

    def start(self) -> FakeServer:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=methods)])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()))
        self._thread.daemon = True
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        assert self._server and self._thread
        self._server.should_exit = True
        self._thread.join(timeout=10)


_FLIGHT_REQUIRED = ("Name", "StartDateISO", "CampaignId", "PriorityId", "GoalType", "Impressions")


class KevelFake:
    """In-memory Kevel network 23; ``page_cap`` forces lists to span several pages."""

    def __init__(self) -> None:
        self.ids = itertools.count(100)
        self.page_cap = 2
        self.channels = [{"Id": 5, "Title": "Display", "IsDeleted": False}]
        self.priorities = [
            {"Id": 51, "Name": "Sponsorship", "ChannelId": 5, "Weight": 1},
            {"Id": 52, "Name": "House", "ChannelId": 5, "Weight": 10},
        ]
        self.sites = [
            {"Id": 7, "Title": "Riverside News"},
            {"Id": 8, "Title": "Old", "IsDeleted": True},
        ]
        self.zones = [
            {"Id": 70, "Name": "Top", "SiteId": 7},
            {"Id": 71, "Name": "Side", "SiteId": 7},
        ]
        self.adtypes = [
            {"Id": 5, "Width": 300, "Height": 250},
            {"Id": 4, "Width": 728, "Height": 90},
        ]
        self.advertisers = {9: {"Id": 9, "Title": "Acme Motors", "IsActive": True}}
        self.campaigns: dict[int, dict[str, Any]] = {}
        self.flights: dict[int, dict[str, Any]] = {}
        self.creatives: dict[int, dict[str, Any]] = {}
        self.ads: list[dict[str, Any]] = []
        self.reports: dict[str, int] = {}  # id -> polls left before it is done
        self.report_polls = 2
        self.report_result: dict[str, Any] = {"Records": []}
        self.forecast_total = {"available": {"impressions": 9000}, "booked": {"impressions": 1000}}
        self.campaign_search = True  # False: a network answering 404 to /campaign/search
        self.search_matches = True  # False: the search returns nothing (odd punctuation)

    def _page(self, items: list[dict[str, Any]], query: dict[str, str]) -> Reply:
        size = min(int(query.get("pageSize", 500)), self.page_cap)
        page = int(query.get("page", 1))
        pages = max((len(items) + size - 1) // size, 1)
        chunk = items[(page - 1) * size : page * size]
        return 200, {"page": page, "pageSize": size, "totalPages": pages, "items": chunk}

    def _new(self, store: dict[int, dict[str, Any]], body: dict[str, Any]) -> Reply:
        obj = {**body, "Id": next(self.ids)}
        store[obj["Id"]] = obj
        return 200, obj

    def handle(self, r: Seen) -> Reply:  # noqa: C901 - one router, read top to bottom
        if r.headers.get("x-adzerk-apikey") != API_KEY:
            return 401, {"message": "Invalid API key"}
        p, m, body = r.path.removeprefix("/v1"), r.method, r.json
        lists = {
            "/channel": self.channels,
            "/priority": self.priorities,
            "/site": self.sites,
            "/zone": self.zones,
            "/adtypes": self.adtypes,
            "/campaign": list(self.campaigns.values()),
        }
        if m == "GET" and p in lists:
            return self._page(lists[p], r.query)
        if (m, p) == ("POST", "/advertiser/search"):
            name = r.form.get("advertiserName", "").lower()
            return 200, {
                "items": [a for a in self.advertisers.values() if name in a["Title"].lower()]
            }
        if (m, p) == ("POST", "/campaign/search") and self.campaign_search:
            name = r.form.get("campaignName", "").lower()  # a substring match, as documented
            return 200, {"items": [c for c in self.campaigns.values() if name in c["Name"].lower()]}
        if (m, p) == ("POST", "/advertiser"):
            return self._new(self.advertisers, body)
        if (m, p) == ("POST", "/campaign"):
            return self._new(self.campaigns, body)
        if (m, p) == ("POST", "/flight"):
            missing = [f for f in _FLIGHT_REQUIRED if f not in body]
            if missing:
                return 400, {"message": f"The {missing[0]} field is required."}
            if body["PriorityId"] not in {x["Id"] for x in self.priorities}:
                return 400, {"message": f"PriorityId {body['PriorityId']} does not exist."}
            if body["CampaignId"] not in self.campaigns:
                return 400, {"message": "Campaign does not exist."}
            geo = [{**g, "LocationId": next(self.ids)} for g in body.get("GeoTargeting", [])]
            return self._new(self.flights, {**body, "GeoTargeting": geo})
        if (m, p) == ("POST", "/creative"):
            return self._new(self.creatives, body)
        if (m, p) == ("POST", "/report/queue"):
            ref = f"rep-{next(self.ids)}"
            self.reports[ref] = self.report_polls
            return 200, {"Id": ref}
        if (m, p) == ("POST", "/forecaster"):
            ref = f"fc-{next(self.ids)}"
            self.reports[ref] = 1
            return 200, {"id": ref, "status": "enqueued", "progress": 0.0}
        if hit := re.fullmatch(r"/report/queue/(.+)", p):
            left = self.reports[hit[1]]
            self.reports[hit[1]] = left - 1
            if left > 0:
                return 200, {"Id": hit[1], "Status": 1}
            return 200, {"Id": hit[1], "Status": 2, "Result": self.report_result}
        if hit := re.fullmatch(r"/forecaster/(.+)", p):
            left = self.reports[hit[1]]
            self.reports[hit[1]] = left - 1
            if left > 0:
                return 200, {"id": hit[1], "status": "running", "progress": 50.0}
            done = {"resultStatus": "success", "result": {"total": self.forecast_total}}
            return 200, {"id": hit[1], "status": "finished", **done}
        if hit := re.fullmatch(r"/(campaign|flight)/(\d+)", p):
            store = self.campaigns if hit[1] == "campaign" else self.flights
            obj = store.get(int(hit[2]))
            if obj is None:
                return 404, {"message": "Not found"}
            if m == "GET":
                return 200, obj
            if store is self.flights and any(f not in body for f in _FLIGHT_REQUIRED):
                return 400, {"message": "Flight updates need the whole object."}
            geo = obj.get("GeoTargeting", []) + body.pop("GeoTargeting", [])  # Kevel appends
            store[obj["Id"]] = {**body, "GeoTargeting": geo} if store is self.flights else body
            return 200, store[obj["Id"]]
        if hit := re.fullmatch(r"/campaign/(\d+)/flight", p):
            flights = [f for f in self.flights.values() if f["CampaignId"] == int(hit[1])]
            return self._page(flights, r.query)
        if hit := re.fullmatch(r"/flight/(\d+)/geotargeting(?:/(\d+)/delete)?", p):
            flight = self.flights[int(hit[1])]
            if hit[2]:
                geo = [g for g in flight["GeoTargeting"] if g["LocationId"] != int(hit[2])]
                flight["GeoTargeting"] = geo
                return 200, None
            target = {**body, "LocationId": next(self.ids)}
            flight["GeoTargeting"].append(target)
            return 200, target
        if hit := re.fullmatch(r"/flight/(\d+)/creative", p):
            ad = {**body, "Id": next(self.ids)}
            self.ads.append(ad)
            return 200, ad
        return 404, {"message": f"no route {m} {p}"}

"""Delivery from GAM's ReportService: run a report job for one order (DATE x LINE_ITEM_ID),
poll it until it completes or a deadline passes, download the CSV and read it as
``DeliveryRow``s. In a CSV_DUMP export money columns are in micros."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from adcp_agent.adapter_protocol import DeliveryRow
from adcp_agent_adapters.gam import faults
from adcp_agent_adapters.gam.session import GamSession, statement

DIMENSIONS = ["DATE", "ORDER_ID", "LINE_ITEM_ID"]
IMPRESSIONS = "AD_SERVER_IMPRESSIONS"
CLICKS = "AD_SERVER_CLICKS"
REVENUE = "AD_SERVER_CPM_AND_CPC_REVENUE"
COMPLETIONS = "VIDEO_VIEWERSHIP_COMPLETE"
COLUMNS = [IMPRESSIONS, CLICKS, REVENUE, COMPLETIONS]
POLL_SECONDS = 5.0


def _gam_date(day: date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}


def report_job(order_id: int, start: date, end: date) -> dict[str, Any]:
    return {
        "reportQuery": {
            "dimensions": DIMENSIONS,
            "columns": COLUMNS,
            "startDate": _gam_date(start),
            "endDate": _gam_date(end),
            "dateRangeType": "CUSTOM_DATE",
            "statement": statement(
                "ORDER_ID = :orderId", {"orderId": order_id}, limit=None, offset=None
            ),
            "timeZoneType": "PUBLISHER",
        }
    }


def _number(row: dict[str, str], column: str) -> int:
    value = (row.get(column) or "0").replace(",", "").strip() or "0"
    return int(float(value))


def parse_csv(text: str) -> list[DeliveryRow]:
    """Rows of a CSV_DUMP export. Headers look like ``Dimension.DATE`` and
    ``Column.AD_SERVER_IMPRESSIONS``; the prefix is dropped."""
    reader = csv.DictReader(io.StringIO(text))
    rows: list[DeliveryRow] = []
    for raw in reader:
        row = {key.rsplit(".", 1)[-1]: value for key, value in raw.items() if key}
        line_id = (row.get("LINE_ITEM_ID") or "").strip()
        day = (row.get("DATE") or "").strip()
        if not line_id or not day or line_id == "-":
            continue  # totals or a blank trailer
        rows.append(
            DeliveryRow(
                external_line_id=line_id,
                day=date.fromisoformat(day),
                impressions=_number(row, IMPRESSIONS),
                clicks=_number(row, CLICKS),
                completions=_number(row, COMPLETIONS),
                spend=round(_number(row, REVENUE) / 1_000_000, 6),
            )
        )
    return rows


async def delivery(session: GamSession, order_id: int, start: date, end: date) -> list[DeliveryRow]:
    operation = "ReportService.runReportJob"
    job = await session.call("ReportService", "runReportJob", report_job(order_id, start, end))
    job_id = int(job.id)
    deadline = session.monotonic() + session.config.report_timeout_seconds
    while True:
        status = str(await session.call("ReportService", "getReportJobStatus", job_id))
        if status == "COMPLETED":
            break
        if status == "FAILED":
            raise faults.error(
                "SERVICE_UNAVAILABLE",
                f"Google Ad Manager could not build the delivery report for order {order_id}.",
                operation,
                "ReportJobStatus.FAILED",
                transient=True,
                report_job_id=job_id,
            )
        if session.monotonic() >= deadline:
            raise faults.error(
                "SERVICE_UNAVAILABLE",
                f"The delivery report for order {order_id} was not ready within "
                f"{session.config.report_timeout_seconds:g} s.",
                operation,
                "REPORT_TIMEOUT",
                transient=True,
                report_job_id=job_id,
            )
        await session.sleep(POLL_SECONDS)
    url = await session.call(
        "ReportService",
        "getReportDownloadUrlWithOptions",
        job_id,
        {
            "exportFormat": "CSV_DUMP",
            "includeReportProperties": False,
            "includeTotalsRow": False,
            "useGzipCompression": True,
        },
    )
    body = await session.download(str(url))
    return parse_csv(body.decode("utf-8-sig"))

"""The buyer's-eye simulation, end to end: ``simulations/run_simulation.py --scenario
quick`` run as a user runs it, twice at once with the same seed: once starting its own
server (the default), once against a running server given by URL. Both must complete
within budget and give the same fingerprint."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from adcp_agent.config import Settings
from simulations.server import ADMIN_PREFIX, SIM_CLOCK_START
from tests.databases import database_settings
from tests.support import DEMO_TOKEN, ServerThread, free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "simulations" / "run_simulation.py"
TIMEOUT_S = 90
SEED = 11


def _start(out: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, str(SCRIPT), "--scenario", "quick", "--seed", str(SEED)]
    return subprocess.Popen(
        [*cmd, "--out", str(out), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], out: Path) -> tuple[dict[str, Any], str]:
    stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, stdout + stderr
    return json.loads((out / "simulation.json").read_text()), stdout


def _running_server(data_dir: Path) -> tuple[ServerThread, str, str]:
    """A server on a simulated clock, as ``adcp-agent serve --sim-clock`` runs it, and
    its freshly initialised admin key."""
    settings = Settings(
        data_dir=data_dir,
        port=free_port(),
        demo_token=DEMO_TOKEN,
        sim_clock=True,
        sim_clock_start=datetime.fromisoformat(SIM_CLOCK_START.replace("Z", "+00:00")),
        **database_settings(data_dir),  # type: ignore[arg-type]
    )
    thread = ServerThread(settings)
    thread.start()
    base = f"http://127.0.0.1:{settings.port}"
    issued = httpx.post(f"{base}{ADMIN_PREFIX}/init-api-key")
    assert issued.status_code == 201, issued.text
    return thread, base, issued.json()["api_key"]


def test_quick_journey_completes_within_budget_and_is_reproducible(tmp_path: Path) -> None:
    first_out, second_out = tmp_path / "own-server", tmp_path / "given-server"
    first = _start(first_out)  # starts its own server, while we start another
    thread, base, admin_key = _running_server(tmp_path / "server")
    try:
        second = _start(second_out, "--server-url", base, "--token", DEMO_TOKEN,
                        "--admin-key", admin_key)  # fmt: skip
        result, stdout = _finish(first, first_out)
        again, _ = _finish(second, second_out)
    finally:
        thread.stop()

    assert result["completed"] is True and result["failures"] == []
    [journey] = result["journeys"]
    assert journey["checks"] == {
        "every_buy_delivered": True,
        "spend_within_budget": True,
        "every_buy_completed": True,
        "history_tells_every_revision": True,
        "added_package_ran_from_its_day": True,
        "snapshots_match_the_report": True,
    }
    buys = {b["kind"]: b for b in journey["buys"]}
    # The publisher's approval and the buyer's pause, resume and added package, in the
    # buys' histories.
    assert [h["action"] for h in buys["guaranteed"]["history"]][-2:] == ["activated", "created"]
    assert [h["action"] for h in buys["auction"]["history"]][-4:] == [
        "updated_packages",
        "resumed",
        "paused",
        "created",
    ]
    assert set(buys) == {"guaranteed", "auction"}
    for buy in buys.values():
        assert buy["impressions"] > 0 and buy["status"] == "completed"
        assert buy["spend"] <= buy["budget"]
        for package in buy["packages"]:
            assert 0 < package["final"]["spend"] <= package["budget"]
            assert [d["day"] for d in package["days"]] == [1, 2, 3]
    assert buys["guaranteed"]["task_id"]  # it went through the publisher's approval
    assert buys["guaranteed"]["packages"][0]["signals"]  # bought with signal targeting
    # The auction buy was paused on day 2 and delivered again after resuming; the
    # package added at the end of day 2 delivered on day 3 only.
    *planned, added = buys["auction"]["packages"]
    auction_days = [d for p in planned for d in p["days"]]
    assert {d["day"] for d in auction_days if d["impressions"] == 0} == {2}
    assert (added["key"], added["added_day"]) == ("A3", 2)
    assert [d["day"] for d in added["days"] if d["impressions"] > 0] == [3]
    tools = [s["tool"] for s in journey["steps"]]
    for tool in ("get_adcp_capabilities", "list_creative_formats", "get_signals",
                 "activate_signal", "get_avails", "admin: approve", "get_task_status",
                 "sync_creatives", "provide_performance_feedback", "pause_media_buy",
                 "resume_media_buy", "update_media_buy", "get_media_buy_report"):  # fmt: skip
        assert tool in tools, tool
    assert tools.count("get_products") >= 3 and tools.count("get_media_buy_delivery") == 3
    # Lead times count on the server's (simulated) clock: the flight starts in 3 days, so
    # the upfront deal (5 days' lead) is not offered, as create_media_buy would refuse it.
    [video] = [s for s in journey["steps"] if s["label"].startswith("brief: premium video")]
    assert video["facts"]["products"] == ["ctv_sports_premium", "olv_news_preroll"]
    assert all(s["ok"] for s in journey["steps"])

    html = (first_out / "simulation.html").read_text()
    assert "<svg" in html and "<script" not in html
    assert result["fingerprint"] in stdout
    assert result["simulation"]["server_started_here"] is True

    # Same seed, another server: other ids, the same journey.
    assert again["simulation"]["server_started_here"] is False
    assert again["completed"] is True
    assert again["fingerprint"] == result["fingerprint"]
    # ...and the same delivery, to the impression: the simulator's noise is seeded from
    # what the buyer asked for, not from the generated ids.
    assert again["delivery_fingerprint"] == result["delivery_fingerprint"]
    assert again["simulation"]["run_id"] != result["simulation"]["run_id"]
    other_ids = {b["media_buy_id"] for b in again["journeys"][0]["buys"]}
    assert other_ids.isdisjoint(b["media_buy_id"] for b in buys.values())

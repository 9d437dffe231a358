"""Drive complete AdCP buyer journeys against adcp-agent over real MCP streamable HTTP,
on the server's simulated clock, and report what happened.

    uv run python simulations/run_simulation.py --scenario quick --seed 7

By default a private server is started (``python -m adcp_agent.cli serve --sim-clock``
on a free 127.0.0.1 port, throwaway data dir) and stopped at the end; ``--server-url``
with ``--token`` and ``--admin-key`` uses a running one instead (it must be started with
``--sim-clock``: this script moves its clock). Writes ``simulation.json`` and
``simulation.html`` (and ``simulation.png`` if matplotlib is installed) to ``--out``.
Exit status: 0 when every journey completed, 1 when one failed, 2 on bad arguments."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__" and not __package__:  # run as a file: make `simulations` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulations.errors import JourneyFailed  # noqa: E402
from simulations.scenarios import SCENARIOS  # noqa: E402
from simulations.server import LocalServer  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_simulation.py",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios:\n"
        + "\n".join(f"  {s.name:<8} {s.description}" for s in SCENARIOS.values()),
    )
    parser.add_argument("--server-url", help="a running server (default: start one here)")
    parser.add_argument("--token", help="buyer token for --server-url")
    parser.add_argument("--admin-key", help="tenant-management API key for --server-url")
    parser.add_argument(
        "--scenario", choices=sorted(SCENARIOS), default="full", help="see below (default full)"
    )
    parser.add_argument("--seed", type=int, default=1, help="same seed, same fingerprint")
    parser.add_argument("--buyers", type=int, default=1, help="concurrent buyer journeys")
    parser.add_argument("--days", type=int, help="flight length (default: the scenario's)")
    parser.add_argument(
        "--out", type=Path, default=Path("simulation-output"), help="where results go"
    )
    args = parser.parse_args(argv)
    if args.days is not None and args.days < 3:
        parser.error("--days must be at least 3 (feedback, a paused day, a resumed day)")
    if not 1 <= args.buyers <= 50:
        parser.error("--buyers must be between 1 and 50")
    if args.server_url and not (args.token and args.admin_key):
        parser.error("--server-url needs --token (a buyer) and --admin-key (approvals, clock)")
    return args


def summary(result: dict[str, Any], out: Path, png: bool) -> str:
    sim = result["simulation"]
    lines = [
        f"adcp-agent simulation · scenario {sim['scenario']} · seed {sim['seed']} · "
        f"{sim['buyers']} buyer(s) · {sim['days']} days from {sim['flight']['start'][:10]}"
    ]
    for j in result["journeys"]:
        state = "completed" if j["completed"] else "FAILED"
        lines.append(f"{j['buyer']} ({j['brand']}) {state} in {len(j['steps'])} steps")
        for buy in j["buys"]:
            for p in buy["packages"]:
                spend = float(p["final"].get("spend", 0))
                lines.append(
                    f"  {p['key']:<3} {p['product_id']:<24} {buy['status'] or '-':<10} "
                    f"budget {p['budget']:>10,.2f}  spent {spend:>10,.2f} "
                    f"({100 * spend / p['budget']:>3.0f}%)  "
                    f"impressions {int(p['final'].get('impressions', 0)):>10,}"
                )
        for o in j["optimisation"]:
            lines.append(
                f"  feedback {o['package']}: index {o['performance_index']}, share of "
                f"spend {o['spend_share_before']} → {o['spend_share_after']}"
            )
        if j["failure"]:
            lines.append(f"  {j['failure']}")
    t = result["totals"]
    lines += [
        f"total: {t['impressions']:,} impressions, {t['spend']:,.2f} of {t['budget']:,.2f} spent",
        f"fingerprint {result['fingerprint']}  "
        f"(delivery fingerprint {result['delivery_fingerprint']})",
        f"wrote {out / 'simulation.json'}, {out / 'simulation.html'}"
        + (f", {out / 'simulation.png'}" if png else ""),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    server: LocalServer | None = None
    try:
        if not args.server_url:
            server = LocalServer(args.out / "server.log")
            print(f"starting adcp-agent on 127.0.0.1:{server.port} ...", file=sys.stderr)
            server.launch()
        # Imported only now, while the server boots: fastmcp and rich take seconds to load.
        from simulations.chart import render_html, write_png
        from simulations.conductor import Options, Target, simulate
        from simulations.report import write_json

        if server is None:
            target = Target(args.server_url.rstrip("/"), args.token, args.admin_key, False)
        else:
            server.wait_healthy()
            target = Target(server.base_url, server.token, None, True)
        scenario = SCENARIOS[args.scenario]
        options = Options(scenario, args.seed, args.buyers, args.days or scenario.days)
        result = asyncio.run(simulate(target, options))
    except JourneyFailed as exc:
        print(f"simulation failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if server is not None:
            server.stop()
    write_json(result, args.out / "simulation.json")
    (args.out / "simulation.html").write_text(render_html(result))
    png = write_png(result, args.out / "simulation.png")
    print(summary(result, args.out, png))
    for failure in result["failures"]:
        print(f"journey failed: {failure}", file=sys.stderr)
    return 0 if result["completed"] else 1


if __name__ == "__main__":
    sys.exit(main())

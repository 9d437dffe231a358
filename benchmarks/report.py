"""The benchmark results as Markdown: every number next to its target."""

from __future__ import annotations

from typing import Any

TARGETS = {
    "p50_ratio": 1.5,  # per call p50 at most 1.5x the floor's
    "throughput_ratio": 0.6,  # at least 0.6x the floor's requests per second
    "cold_start_s": 3.0,
    "rss_mib": 150.0,
    "tools_list_kb": 150.0,
    "p50_drift": 0.20,  # p50 with the bulk-loaded buys within +-20% of the empty database's
}


def _yes(met: bool) -> str:
    return "yes" if met else "**NO**"


def _ops_table(results: dict[str, Any]) -> list[str]:
    """Each operation against the floor's call measured next to it (its tools/list for
    tools/list, its no-op call for the tools)."""
    floor, agent = results["floor"]["ops"], results["agent"]["ops"]
    lines = [
        "| operation | p50 ms | p99 ms | req/s | errors | floor call | floor p50 ms "
        "| floor req/s | p50 / floor | req/s / floor | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, op in agent.items():
        base = floor[name]
        p50_ratio = op["p50_ms"] / base["p50_ms"] if base["p50_ms"] else float("inf")
        rps_ratio = op["rps"] / base["rps"] if base["rps"] else 0.0
        met = (
            p50_ratio <= TARGETS["p50_ratio"]
            and rps_ratio >= TARGETS["throughput_ratio"]
            and not op["errors"]
            and not base["errors"]
        )
        lines.append(
            f"| {name} | {op['p50_ms']} | {op['p99_ms']} | {op['rps']} | {op['errors']} | "
            f"{'tools/list' if name == 'tools/list' else 'noop'} | {base['p50_ms']} | "
            f"{base['rps']} | {p50_ratio:.2f} | {rps_ratio:.2f} | {_yes(met)} |"
        )
    if "get_media_buy_delivery" not in agent:
        lines.append(
            "| get_media_buy_delivery | not served by this build: skipped | | | | | | | | | |"
        )
    return lines


def _cpu_table(results: dict[str, Any]) -> list[str]:
    """Where the time went: CPU per request of each server and of the load generator
    (which shares the machine's cores with them), over whole loads."""
    floor, agent = results["floor"]["ops"], results["agent"]["ops"]
    lines = [
        "CPU per request (ms; /proc for the servers, the load generator's own process "
        "time; warm-ups included), and how late the load generator's event loop woke "
        "(a p99 latency near it is the generator's, not the server's):",
        "",
        "| operation | adcp-agent | its floor call | ratio | load generator (agent) "
        "| load generator (floor) | generator's loop lag p99 ms (agent / floor) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, op in agent.items():
        base = floor[name]
        ratio = op["server_cpu_ms"] / base["server_cpu_ms"] if base["server_cpu_ms"] else 0.0
        lines.append(
            f"| {name} | {op['server_cpu_ms']} | {base['server_cpu_ms']} | {ratio:.2f} | "
            f"{op['client_cpu_ms']} | {base['client_cpu_ms']} | "
            f"{op['client_lag_p99_ms']} / {base['client_lag_p99_ms']} |"
        )
    return lines


def _measures_table(results: dict[str, Any]) -> list[str]:
    floor, agent = results["floor"], results["agent"]
    tools_kb = agent["ops"]["tools/list"]["payload_bytes"] / 1024
    floor_kb = floor["ops"]["tools/list"]["payload_bytes"] / 1024
    rows = [
        ("cold start, fresh data dir (s)", agent["cold_start_s"], floor["cold_start_s"],
         f"< {TARGETS['cold_start_s']}", agent["cold_start_s"] < TARGETS["cold_start_s"]),
        ("RSS after the load (MiB)", agent["rss_mib"], floor["rss_mib"],
         f"< {TARGETS['rss_mib']:.0f}", agent["rss_mib"] < TARGETS["rss_mib"]),
        ("peak RSS (MiB)", agent["peak_rss_mib"], floor["peak_rss_mib"], "", None),
        ("tools/list payload (kB)", round(tools_kb, 1), round(floor_kb, 1),
         f"< {TARGETS['tools_list_kb']:.0f}", tools_kb < TARGETS["tools_list_kb"]),
    ]  # fmt: skip
    lines = ["| measure | adcp-agent | floor | target | met |", "|---|---|---|---|---|"]
    for label, ours, theirs, target, met in rows:
        lines.append(
            f"| {label} | {ours} | {theirs} | {target} | {'' if met is None else _yes(met)} |"
        )
    return lines


def _loaded_table(results: dict[str, Any]) -> list[str]:
    agent, loaded = results["agent"], results["loaded"]
    lines = [
        f"With {results['settings']['buys']:,} media buys bulk-loaded (seed_buys.py, "
        f"{results['seed_seconds']} s), measured next to the empty database's in the same rounds:",
        "",
        "| operation | p50 ms empty | p50 ms loaded | drift | p99 ms loaded | req/s loaded | met "
        "| server CPU ms empty → loaded |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, op in loaded["ops"].items():
        before = agent["ops"][name]["p50_ms"]
        drift = (op["p50_ms"] - before) / before if before else float("inf")
        met = abs(drift) <= TARGETS["p50_drift"] and not op["errors"]
        cpu = agent["ops"][name]["server_cpu_ms"], op["server_cpu_ms"]
        cpu_drift = (cpu[1] - cpu[0]) / cpu[0] if cpu[0] else float("inf")
        lines.append(
            f"| {name} | {before} | {op['p50_ms']} | {drift:+.0%} | {op['p99_ms']} | "
            f"{op['rps']} | {_yes(met)} | {cpu[0]} → {cpu[1]} ({cpu_drift:+.0%}) |"
        )
    lines += [
        "",
        f"Loaded server: cold start {loaded['cold_start_s']} s, RSS after the load "
        f"{loaded['rss_mib']} MiB (peak {loaded['peak_rss_mib']} MiB).",
    ]
    return lines


def markdown(results: dict[str, Any]) -> str:
    settings = results["settings"]
    lines = [
        f"Machine: {results['machine']}",
        "",
        f"Load: {settings['clients']} concurrent clients, {settings['seconds']} s measured per "
        f"operation and server in {settings['rounds']} rounds; in each, every operation on "
        f"the floor and the server(s) back to back, their order rotating from round to "
        f"round; database: {results['database']}.",
        "",
        *_ops_table(results),
        "",
        *_cpu_table(results),
        "",
        *_measures_table(results),
    ]
    if results.get("loaded"):
        lines += ["", *_loaded_table(results)]
    errors = [
        f"- {server}: {name}: {op['first_error']}"
        for server in ("agent", "loaded")
        for name, op in (results.get(server) or {"ops": {}})["ops"].items()
        if op["first_error"]
    ]
    if errors:
        lines += ["", "First error per operation:", *errors]
    return "\n".join(lines)

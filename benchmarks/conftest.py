"""The benchmark session's report: library versions in the JSON, and the ratio table.

Micro groups pair an ``aiortc`` benchmark with a ``lean`` one (see
``test_media_micro``); the table gives aiortc's mean over the lean mean. The macro
results (``test_media_macro``, :mod:`benchmarks.capacity`) give participants per core per path, as a ratio to
aiortc's default path measured in the same run. The join runs (``test_joins``) give split
against bundled per size and rate (``joins`` in the JSON). The tables are printed at the
end and saved with the results.
"""

from __future__ import annotations

import importlib.metadata
import io
import platform
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from benchmarks.capacity import JOIN_RATE
from benchmarks.joins import SHORT_LADDER
from simulator.crowd.metrics import CONNECT_PHASES
from simulator.media import MEDIA_PATHS

LIBRARIES = ("aiortc", "aioice", "av", "pylibsrtp", "uvloop", "numpy", "pytest-benchmark")


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ladder",
        choices=("full", "short"),
        default="full",
        help="the join ramps: every size and rate, or only those of benchmarks.joins.SHORT_LADDER",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("ladder") == "full":
        return
    kept, left = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        ramp = None if params is None else (params.params.get("participants"), params.params.get("rate"))
        (left if item.name.startswith("test_joins[") and ramp not in SHORT_LADDER else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    machine_info["libraries"] = {name: _version(name) for name in LIBRARIES}
    machine_info["python"] = platform.python_version()


def _ratios(benchmarks: list[Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    groups: dict[str, dict[str, Any]] = {}
    for bench in benchmarks:
        groups.setdefault(bench.group or "", {})[bench.name] = bench
    for group, members in sorted(groups.items()):
        aiortc = next((b for n, b in members.items() if "aiortc" in n), None)
        lean = next((b for n, b in members.items() if "lean" in n), None)
        if aiortc is not None and lean is not None:
            rows.append(
                {
                    "measure": group,
                    "aiortc": f"{aiortc.stats.mean * 1e6:.2f} µs",
                    "lean": f"{lean.stats.mean * 1e6:.2f} µs",
                    "ratio": round(aiortc.stats.mean / lean.stats.mean, 1),
                }
            )
    macro = {
        b.extra_info["path"]: b.extra_info
        for b in benchmarks
        if b.group == "participants per core" and "path" in b.extra_info
    }
    # Ratios compare sizes that held in this same run; a path where nothing held says so.
    full = macro.get("full", {})
    base = full.get("generator_per_core")
    base_text = f"{base:.1f} (full, held {full['largest_held']})" if base else _not_held(full)
    for path in MEDIA_PATHS:
        info = macro.get(path)
        if info is None:
            continue
        per_core = info["generator_per_core"]
        if per_core is None:
            lean_text = _not_held(info)
        else:
            lean_text = (
                f"{per_core:.1f} (held {info['largest_held']}; SFU {info['sfu_per_core'] or 0:.0f}/core; "
                f"{info['rss_per_participant_mib']} MiB each; {info['cpu_us_per_packet']} µs/packet; "
                f"connect p95 {info['connect_p95_ms']} ms)"
            )
            if info["boundary_failure"]:
                lean_text += f"; failed at {info['boundary_failure']}"
        rows.append(
            {
                "measure": f"participants per core: {path}",
                "aiortc": base_text,
                "lean": lean_text,
                "ratio": round(per_core / base, 1) if per_core and base else None,
            }
        )
    steps = {path: info["steps"][0] for path, info in macro.items() if info.get("steps")}
    if "lean" in steps and "full" in steps:
        rows.append(
            {
                "measure": f"join p95, createOffer → connected, {JOIN_RATE:g} joins/s",
                "aiortc": _connect(steps["full"]),
                "lean": _connect(steps["lean"]),
                "ratio": None,
            }
        )
    return rows


def _not_held(info: dict[str, Any]) -> str:
    if not info:
        return "not measured"
    return f"below {info['below']} (failed at {info['boundary_failure']})"


def _connect(step: dict[str, Any]) -> str:
    p95 = step["connect_ms"].get("p95")
    return f"{p95} ms at {step['participants']}" if p95 is not None else f"no join at {step['participants']}"


def _joins(benchmarks: list[Any]) -> list[dict[str, Any]]:
    """Split against bundled for each size and rate measured in this run (benchmarks.joins)."""
    runs: dict[tuple[int, float], dict[str, dict[str, Any]]] = {}
    for bench in benchmarks:
        info = bench.extra_info
        if bench.group and bench.group.startswith("joins:") and "transport" in info:
            runs.setdefault((info["participants"], info["rate"]), {})[info["transport"]] = info
    rows = []
    for (participants, rate), by in sorted(runs.items()):
        split, bundled = by.get("split", {}), by.get("bundled", {})
        before, after = split.get("backend_cpu_per_join_ms"), bundled.get("backend_cpu_per_join_ms")
        rows.append(
            {
                "participants": participants,
                "rate": rate,
                "split": {k: split.get(k) for k in _JOIN_FIGURES},
                "bundled": {k: bundled.get(k) for k in _JOIN_FIGURES},
                "cpu_ratio": round(before / after, 1) if before and after and before > 0 < after else None,
            }
        )
    return rows


def _join_cost(benchmarks: list[Any]) -> dict[str, Any]:
    """One participant joining a full room and leaving, split against bundled (benchmarks.joins)."""
    by = {
        bench.extra_info["transport"]: bench.extra_info
        for bench in benchmarks
        if bench.group and bench.group.startswith("join cost:") and "transport" in bench.extra_info
    }
    if not by:
        return {}
    split, bundled = by.get("split", {}), by.get("bundled", {})
    ratios = {}
    for figure in ("backend_cpu_per_join_ms", "client_cpu_per_join_ms"):
        before, after = split.get(figure), bundled.get(figure)
        ratios[figure] = round(before / after, 1) if before and after and after > 0 else None
    return {"split": split, "bundled": bundled, "ratios": ratios}


_JOIN_FIGURES = (
    "connect_p95_ms",
    "connect_phases_p95_ms",
    "join_p95_ms",
    "backend_cpu_per_join_ms",
    "ramp_lag_p99_ms",
    "steady_lag_p99_ms",
    "backend_steady_share",
    "generator_steady_share",
    "floor_share",
)


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f} %"


def _steady_text(figures: dict[str, Any]) -> str:
    """Each side's share of a core once everyone is in, beside its media floor (benchmarks.floor)."""
    floor = figures.get("floor_share")
    if not floor:
        return "not measured"
    return (
        f"SFU {_percent(figures.get('backend_steady_share'))} (floor {_percent(floor['sfu'])}); "
        f"generator {_percent(figures.get('generator_steady_share'))} (floor {_percent(floor['generator'])})"
    )


def _join_text(figures: dict[str, Any]) -> str:
    if figures.get("connect_p95_ms") is None:
        return "not measured"
    phases = figures.get("connect_phases_p95_ms") or {}
    spent = " · ".join(str(phases.get(phase)) for phase in CONNECT_PHASES)
    return (
        f"{figures['connect_p95_ms']} ms ({spent}); CPU {figures['backend_cpu_per_join_ms']} ms/join; "
        f"lag p99 {figures['ramp_lag_p99_ms']} / {figures['steady_lag_p99_ms']} ms"
    )


def _doors(benchmarks: list[Any]) -> list[dict[str, Any]]:
    """The Jitsi door beside the native one (benchmarks.test_jitsi_door): per core, joins, Prosody."""
    rows = []
    native = None
    for bench in sorted(benchmarks, key=lambda b: b.name):
        info, group = bench.extra_info, bench.group or ""
        if not group.startswith(("participants per core by door", "joins through the XMPP door")):
            continue
        if "browser_cpu_share" in info:
            continue  # the anchor: a row of its own, below
        steady = info.get("steady") or {}
        per_core = steady.get("generator_per_core")
        participants = info.get("participants") or 1
        row = {
            "measure": bench.name.removeprefix("test_"),
            "participants per core": per_core,
            "SFU + focus per core": steady.get("backend_per_core"),
            "join p95 ms": info.get("join_ms", {}).get("p95"),
            "XMPP phases p95 ms": info.get("xmpp_phases_p95_ms"),
            "Prosody % of a core per 100": None
            if info.get("prosody_cpu_share") is None
            else round(info["prosody_cpu_share"] * 100 * 100 / participants, 2),
            "invariants held": info.get("invariants_held"),
        }
        if bench.name.endswith("[native]"):
            native = per_core
        rows.append(row)
    anchor = next(
        (b.extra_info for b in benchmarks if b.extra_info.get("browser_cpu_share")),
        None,
    )
    for row in rows:
        mine = row["participants per core"]
        row["of native"] = round(mine / native, 2) if mine and native else None
        # One browser participant's cores × participants per core: how many of ours cost as much.
        row["browsers' cost ratio"] = round(mine * anchor["browser_cpu_share"]) if mine and anchor else None
    if anchor is not None:
        row = dict.fromkeys(rows[0] if rows else ("measure",))
        row["measure"] = (
            f"the anchor: one published-SDK participant in headless Chromium, "
            f"{anchor['browser_cpu_share'] * 100:.0f} % of a core, {anchor['browser_rss_mib']} MiB"
        )
        rows.append(row)
    return rows


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: list[Any], output_json: dict[str, Any]
) -> None:
    session = config._benchmarksession  # type: ignore[attr-defined]
    output_json["ratios"] = _ratios(session.benchmarks)
    output_json["joins"] = _joins(session.benchmarks)
    output_json["join_cost"] = _join_cost(session.benchmarks)
    output_json["doors"] = _doors(session.benchmarks)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    console = Console(width=160, record=True, file=io.StringIO())
    if rows := _ratios(session.benchmarks):
        table = Table(title="media core: aiortc's way against callsim's lean path (ratio: times cheaper)")
        for column in ("measure", "aiortc", "lean", "ratio"):
            table.add_column(column)
        for row in rows:
            ratio = "" if row["ratio"] is None else f"×{row['ratio']}"
            table.add_row(row["measure"], row["aiortc"], row["lean"], ratio)
        console.print(table)
    if joins := _joins(session.benchmarks):
        table = Table(
            title="joins: createOffer → connected p95 (answer · ICE · DTLS p95s); backend CPU per join;"
            " generator lag p99 (ramp, steady); once all are in, each side's share of a core"
            " and its media floor (kernel + SRTP alone, benchmarks.floor)"
        )
        for column in ("participants × joins/s", "split", "bundled", "CPU per join", "bundled, all in"):
            table.add_column(column)
        for row in joins:
            ratio = "" if row["cpu_ratio"] is None else f"×{row['cpu_ratio']} lower"
            table.add_row(
                f"{row['participants']} × {row['rate']:g}/s",
                _join_text(row["split"]),
                _join_text(row["bundled"]),
                ratio,
                _steady_text(row["bundled"]),
            )
        console.print(table)
    if cost := _join_cost(session.benchmarks):
        table = Table(title="join cost: one participant into a room of 3 and out again, one at a time")
        for column in ("measure", "split", "bundled", "ratio"):
            table.add_column(column)
        for figure, label in (
            ("backend_cpu_per_join_ms", "backend CPU per join + leave (ms)"),
            ("client_cpu_per_join_ms", "client CPU per join + leave (ms)"),
            ("connect_p95_ms", "createOffer → connected p95 (ms)"),
        ):
            ratio = cost["ratios"].get(figure)
            table.add_row(
                label,
                str(cost["split"].get(figure)),
                str(cost["bundled"].get(figure)),
                "" if ratio is None else f"×{ratio} lower",
            )
        console.print(table)
    if doors := _doors(session.benchmarks):
        table = Table(title="the Jitsi door beside the native one: lean participants in rooms of 4")
        for column in doors[0]:
            table.add_column(column)
        for row in doors:
            phases = row["XMPP phases p95 ms"]
            cells = {**row, "XMPP phases p95 ms": " · ".join(map(str, phases.values())) if phases else "–"}
            table.add_row(*("–" if v is None else str(v) for v in cells.values()))
        console.print(table)
    if not console.export_text(clear=False).strip():
        return
    for line in console.export_text().splitlines():
        terminalreporter.write_line(line)

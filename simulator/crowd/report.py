"""A run's report folder: ``run.json`` (everything), ``junit.xml`` (one test case per
expectation, for CI) and ``report.html`` (self-contained: inline SVG plots, no scripts).

Plots: the join-time distribution; time to first audio and video; receive bitrate and
RTP loss over time; and a timeline of events per session.
"""

from __future__ import annotations

import html
import io
import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from simulator.crowd.expectations import doors_seen, loss_percent, networks_seen
from simulator.crowd.metrics import HISTOGRAMS

if TYPE_CHECKING:
    from simulator.crowd.runner import RunResult

__all__ = ["receive_rates", "write_report"]


def _data(result: RunResult) -> dict[str, Any]:
    import msgspec  # noqa: PLC0415

    metrics = result.metrics
    return {
        "scenario": msgspec.to_builtins(result.plan.scenario),
        "verdict": result.verdict,
        "passed": result.passed,
        "interrupted": result.interrupted,
        "interrupted_at": None if result.interrupted_at is None else round(result.interrupted_at, 2),
        "generator_limited": result.generator_limited,
        "wall_seconds": round(result.wall_seconds, 2),
        "participants": [
            {
                "uid": p.identity.uid,
                "name": p.identity.name,
                "session": p.session_id,
                "profile": p.profile,
                "door": p.door,
            }
            for p in result.plan.participants
        ],
        "expectations": [{**vars(e), "passed": not e.failed} for e in result.expectations],
        "histograms": {name: metrics.summary(name) for name in sorted({*HISTOGRAMS, *metrics.histograms})},
        "counters": dict(metrics.counters),
        "by_participant": {uid: dict(c) for uid, c in metrics.by_participant.items()},
        "by_session": {s: dict(c) for s, c in metrics.by_session(_session_of(result)).items()},
        "loss_percent": loss_percent(metrics),
        "networks": networks_seen(result.plan, metrics),
        "workers": metrics.workers,
        "steady": None if result.steady is None else result.steady.to_data(),
        "backend_cpu_share": result.backend_cpu_share,
        "prosody_cpu_share": result.prosody_cpu_share,
        "worker_errors": result.worker_errors,
        "doors": doors_seen(result.plan, metrics),
        "canaries": result.canaries,
        "series": metrics.series,
        "observations": metrics.observations,
    }


def _session_of(result: RunResult) -> dict[str, str]:
    return {p.identity.uid: p.session_id for p in result.plan.participants}


def _junit(result: RunResult) -> bytes:
    """One test case per expectation: failed, passed, or skipped with why (not exercised, not
    judged); an interrupted run says so in a property and a skipped ``run`` case."""
    failures = sum(e.failed for e in result.expectations) + len(result.worker_errors)
    skipped = sum(e.verdict in ("not exercised", "not judged") for e in result.expectations)
    suite = ET.Element(
        "testsuite",
        name=f"callsim run {result.plan.scenario.scenario.name}",
        tests=str(len(result.expectations) + len(result.worker_errors) + result.interrupted),
        failures=str(failures),
        skipped=str(skipped + result.interrupted),
        time=f"{result.wall_seconds:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="verdict", value=result.verdict)
    if result.interrupted:
        ET.SubElement(properties, "property", name="interrupted_at", value=f"{result.interrupted_at:.2f}")
        case = ET.SubElement(suite, "testcase", classname="callsim.run", name="interrupted")
        ET.SubElement(case, "skipped", message=result.heading)
    for e in result.expectations:
        case = ET.SubElement(suite, "testcase", classname="callsim.expectations", name=e.name)
        if e.failed:
            ET.SubElement(case, "failure", message=f"{e.observed} (limit {e.limit})").text = e.detail
        elif e.verdict != "pass":
            ET.SubElement(case, "skipped", message=f"{e.verdict}: {e.observed} {e.detail}".strip())
    for error in result.worker_errors:
        case = ET.SubElement(suite, "testcase", classname="callsim.workers", name="worker")
        ET.SubElement(case, "failure", message=error)
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def _svg(figure: Any) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _distribution(result: RunResult, names: list[tuple[str, str]], title: str) -> str:
    figure, axis = plt.subplots(figsize=(7, 3))
    for name, label in names:
        values = result.metrics.values(name)
        if values:
            xs, counts = zip(*values, strict=True)
            axis.bar(xs, counts, width=max(1.0, (max(xs) - min(xs)) / 60), alpha=0.6, label=label)
    axis.set_xlabel("milliseconds")
    axis.set_ylabel("samples")
    axis.set_title(title)
    axis.legend()
    return _svg(figure)


def receive_rates(series: list[dict[str, Any]], bucket: float = 2.0) -> list[tuple[float, float]]:
    """(time, Mbit/s received) summed over workers, from each worker's own samples.

    Each worker's ``bytes_received_total`` only grows (see ``worker._report``), so its steps
    are true rates: a participant leaving is not an outage. Rates are taken per worker
    first (their samples are not aligned), then averaged per time bucket and summed.
    """
    by_worker: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for sample in series:
        by_worker[sample["worker"]].append(sample)
    buckets: dict[float, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for worker, samples in by_worker.items():
        samples.sort(key=lambda s: s["at"])
        for a, b in itertools.pairwise(samples):
            if b["at"] > a["at"]:
                grown = b["bytes_received_total"] - a["bytes_received_total"]
                buckets[round(b["at"] / bucket) * bucket][worker].append(
                    grown * 8 / (b["at"] - a["at"]) / 1e6
                )
    return [
        (t, sum(sum(rates) / len(rates) for rates in per_worker.values()))
        for t, per_worker in sorted(buckets.items())
    ]


def _over_time(result: RunResult) -> str:
    by_time: dict[float, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for sample in result.metrics.series:
        bucket = by_time[round(sample["at"] / 2) * 2]
        for key in ("packets_lost", "packets_received"):
            bucket[key] += sample[key]
    times = sorted(by_time)
    figure, (rate, loss) = plt.subplots(2, 1, figsize=(7, 4), sharex=True)
    if rates := receive_rates(result.metrics.series):
        rate.plot(*zip(*rates, strict=True))
    if times:
        lost = [by_time[t]["packets_lost"] for t in times]
        received = [by_time[t]["packets_received"] for t in times]
        loss.plot(
            times, [100 * lo / (lo + re) if lo + re else 0 for lo, re in zip(lost, received, strict=True)]
        )
    rate.set_ylabel("Mbit/s received")
    loss.set_ylabel("RTP loss %")
    loss.set_xlabel("seconds since start")
    rate.set_title("Receive bitrate (every connection, left ones included) and loss (current ones)")
    return _svg(figure)


def _timeline(result: RunResult) -> str:
    sessions = sorted({p.session_id for p in result.plan.participants})
    row = {s: i for i, s in enumerate(sessions)}
    session_of = {p.identity.uid: p.session_id for p in result.plan.participants}
    kinds = {"joined": ("o", "join"), "left": ("x", "leave seen"), "mute": ("v", "mute/unmute"),
             "ring": ("*", "ringing call"), "error": ("D", "error")}  # fmt: skip
    figure, axis = plt.subplots(figsize=(7, 0.6 * len(sessions) + 1.5))
    for kind, (marker, label) in kinds.items():
        points = [
            (o["at"], row[session_of[o.get("uid") or o.get("observer") or o.get("caller", "")]])
            for o in result.metrics.of(kind)
            if (o.get("uid") or o.get("observer") or o.get("caller", "")) in session_of
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            axis.scatter(xs, ys, marker=marker, label=label, alpha=0.7)
    axis.set_yticks(range(len(sessions)), sessions)
    axis.set_xlabel("seconds since start")
    axis.set_title("Events per session")
    axis.legend(loc="upper left", bbox_to_anchor=(1, 1))
    return _svg(figure)


def _html(result: RunResult, data: dict[str, Any]) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr class='{e.verdict.replace(' ', '-')}'><td>{e.mark} {esc(e.name)}</td>"
        f"<td>{esc(e.observed)}</td><td>{esc(e.limit)}</td><td>{esc(e.verdict)}</td><td>{esc(e.detail)}</td></tr>"
        for e in result.expectations
    )
    columns = ("count", "p50", "p95", "p99", "max")
    histograms = "".join(
        f"<tr><td>{esc(n)}</td>" + "".join(f"<td>{s.get(k, '—')}</td>" for k in columns) + "</tr>"
        for n, s in data["histograms"].items()
    )
    workers = "".join(
        f"<tr><td>{w['worker']}</td><td>{w['participants']}</td><td>{w['cpu_share'] * 100:.0f} %</td>"
        f"<td>{w['loop_lag_p99_ms']} ms</td><td>{w['max_rss_mib']} MiB</td>"
        f"<td>{'yes' if w['generator_limited'] else 'no'}</td></tr>"
        for w in data["workers"]
    )
    sessions = "".join(
        f"<tr><td>{esc(name)}</td><td>{c.get('joins', 0)}</td><td>{c.get('events', 0)}</td>"
        f"<td>{c.get('frames_received', 0)}</td><td>{c.get('errors', 0)}</td></tr>"
        for name, c in sorted(data["by_session"].items())
    )
    doors = "".join(
        f"<tr><td>{esc(d['door'])}</td><td>{d['participants']}</td><td>{d['joins']}</td><td>{d['leaves']}</td>"
        f"<td>{d['errors']}</td><td>{d['join_p95_ms'] if d['join_p95_ms'] is not None else '—'}</td></tr>"
        for d in data["doors"]
    )
    canaries = _canaries_html(data["canaries"])
    media = [("first_audio_ms", "first audio"), ("first_video_ms", "first video")]
    plots = [
        _distribution(result, [("join_ms", "join time")], "Join time (start_session → media connected)"),
        _distribution(result, media, "Time to first media"),
        _over_time(result),
        _timeline(result),
    ]
    banner = (
        f"<p class=interrupted><b>Interrupted</b> (Ctrl-C) at {result.interrupted_at:.1f} s: what was "
        "measured until then is reported; expectations whose window had not completed are not judged.</p>"
        if result.interrupted_at is not None
        else ""
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>callsim run — {esc(result.plan.scenario.scenario.name)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}}.pass{{background:#e8f5e9}}.fail{{background:#ffebee}}
.not-exercised,.not-judged{{background:#f5f5f5}}.interrupted{{background:#fff8e1;padding:6px}}</style></head><body>
<h1>{esc(result.heading)}</h1>{banner}
<p>{len(result.plan.participants)} participants in {len({p.session_id for p in result.plan.participants})} sessions,
{result.plan.scenario.scenario.duration:g} s, seed {result.plan.scenario.scenario.seed}; wall {result.wall_seconds:.1f} s;
RTP loss {data["loss_percent"]:.2f} %; {"<b>generator-limited</b>" if result.generator_limited else "not generator-limited"}.</p>
<h2>Expectations</h2><table><tr><th>expectation</th><th>observed</th><th>limit</th><th>verdict</th><th>detail</th></tr>{rows}</table>
<h2>Distributions (ms)</h2><table><tr><th></th><th>count</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>{histograms}</table>
<h2>Doors</h2><table><tr><th>door</th><th>participants</th><th>joins</th><th>leaves</th><th>errors</th><th>join p95 (ms)</th></tr>{doors}</table>
{canaries}
<h2>Sessions</h2><table><tr><th>session</th><th>joins</th><th>callbacks</th><th>frames received</th><th>errors</th></tr>{sessions}</table>
<h2>Workers</h2><table><tr><th>worker</th><th>participants</th><th>CPU</th><th>loop lag p99</th><th>RSS</th><th>generator-limited</th></tr>{workers}</table>
<h2>Plots</h2>{"".join(f"<figure>{p}</figure>" for p in plots)}
</body></html>"""  # noqa: E501


def _canaries_html(canaries: list[dict[str, Any]]) -> str:
    """The canaries' section: what the published SDK in Chromium saw, beside the crowd's figures."""
    if not canaries:
        return ""
    esc = html.escape

    def figure(value: object, unit: str = "") -> str:
        return "—" if value is None else f"{value}{unit}"

    rows = "".join(
        f"<tr><td>{esc(c['uid'])}</td><td>{esc(c['session'])}</td><td>{'yes' if c['joined'] else 'no'}</td>"
        f"<td>{figure(c['first_frame_ms'], ' ms')}</td><td>{c['freezes']} in {c['minutes']:.1f} min</td>"
        f"<td>{c['jitter_ms']} ms</td><td>{c['loss_percent']} %</td><td>{c['audible']} of {c['others']}</td>"
        f"<td>{c['outgoing_bitrate'] / 1e6:.2f} Mbit/s</td><td>{c['callbacks']}</td>"
        f"<td>{esc(c['error'])}</td></tr>"
        for c in canaries
    )
    return (
        "<h2>Canaries: the published SDK in Chromium</h2><table><tr><th>canary</th><th>session</th>"
        "<th>in</th><th>first remote frame</th><th>freezes</th><th>jitter</th><th>loss</th>"
        "<th>heard (audio energy)</th>"
        f"<th>outgoing estimate</th><th>callbacks</th><th>error</th></tr>{rows}</table>"
    )


def write_report(result: RunResult, folder: Path) -> Path:
    """Write the report folder; the HTML page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = _data(result)
    (folder / "run.json").write_text(json.dumps(data, indent=1, default=str))
    (folder / "junit.xml").write_bytes(_junit(result))
    page = folder / "report.html"
    page.write_text(_html(result, data))
    return page

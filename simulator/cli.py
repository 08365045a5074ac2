"""The ``callsim`` command: ``run`` (the main job: a scenario of virtual participants),
``demo`` (a quick printed look), ``serve`` (the standalone backend) and ``conform`` (the
conformance suite against an implementation)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from simulator import eventloop
from simulator.media import MEDIA_PATHS
from simulator.published_sdk import SDK_BUNDLE

if TYPE_CHECKING:
    from simulator.crowd.jitsi import JitsiTarget
    from simulator.crowd.live import LiveRun
    from simulator.server import Backend

__all__ = ["main"]


EXIT_USAGE: Final = 2
"""A run that could not start: bad options, a busy port, a backend that cannot be reached."""
"""Where ``tox -e interop`` (npm) puts the published SDK's bundle."""
EXIT_INTERRUPTED: Final = 130
"""Ctrl-C: the shell's own code for SIGINT, so scripts tell an interrupt from a failure."""


def _fail(message: str) -> int:
    """One line on standard error, never a traceback, and the usage exit code."""
    print(f"callsim: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE


async def _serve(args: argparse.Namespace, sdk_bundle: Path) -> int:
    import shutil

    from simulator.server import Backend
    from simulator.server.jitsi.prosody import ProsodyError

    xmpp = args.xmpp if args.xmpp is not None else shutil.which("prosody") is not None
    if args.xmpp is None and not xmpp:
        print("callsim: no Prosody: the XMPP door (the published SDK's) stays shut", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    https_port = args.https_port if args.https_port is not None else (443 if xmpp else None)
    backend = Backend(
        host=args.host, port=args.port, db=args.db, api_key=args.api_key, webrtc_host=args.webrtc_host,
        https_port=https_port, xmpp=xmpp, sdk_bundle=sdk_bundle,
    )  # fmt: skip
    try:
        await backend.start()
    except PermissionError as exc:
        return _fail(
            f"serve: cannot listen ({exc.strerror or exc}); the published SDK needs port 443: run as root, "
            "under tools/in-private-network, or give --https-port and forward 443 to it"
        )
    except OSError as exc:
        return _fail(f"serve: cannot listen on {args.host}: {exc.strerror or exc}")
    except ProsodyError as exc:
        return _fail(f"serve: {exc}")
    try:
        _banner(args, backend)
        async with contextlib.AsyncExitStack() as stack:
            if args.metrics is not None:
                try:
                    url = await _listen(
                        stack, "--metrics", args.metrics, _backend_metrics(backend, args.metrics)
                    )
                except _CannotListenError as exc:
                    return _fail(f"serve: {exc}")
                print(f"  metrics for Prometheus: {url}", flush=True)
            await stop.wait()
    finally:
        await backend.close()
    return 0


def _listen_address(text: str) -> tuple[str, int]:
    """``--metrics``'s or ``--dashboard``'s ``[HOST:]PORT`` (argparse reports the ValueError's
    message as the error)."""
    from simulator.prometheus import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _CannotListenError(OSError):
    """An option's address could not be listened on (the message says which and why)."""


async def _listen(
    stack: contextlib.AsyncExitStack,
    option: str,
    address: tuple[str, int],
    serving: contextlib.AbstractAsyncContextManager[str],
) -> str:
    """Enter ``serving`` (a listener for ``option``) for the stack's life; its URL."""
    try:
        return await stack.enter_async_context(serving)
    except OSError as exc:
        raise _CannotListenError(
            f"cannot serve {option} on {_address(address)}: {exc.strerror or exc}"
        ) from None


def _address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _backend_metrics(
    backend: Backend, address: tuple[str, int]
) -> contextlib.AbstractAsyncContextManager[str]:
    """The backend's metrics served at ``address`` (the context yields the URL)."""
    from prometheus_client import CollectorRegistry

    from simulator.prometheus import metrics_endpoint
    from simulator.server.metrics import BackendCollector

    registry = CollectorRegistry()
    registry.register(BackendCollector(backend))
    return metrics_endpoint(registry, *address)


def _run_metrics(live: LiveRun, address: tuple[str, int]) -> contextlib.AbstractAsyncContextManager[str]:
    """The run's metrics (and its embedded backend's) served at ``address``."""
    from prometheus_client import CollectorRegistry

    from simulator.crowd.prometheus import RunCollector
    from simulator.prometheus import metrics_endpoint

    registry = CollectorRegistry()
    registry.register(RunCollector(live))
    return metrics_endpoint(registry, *address)


def _banner(args: argparse.Namespace, backend: Backend) -> None:
    print(
        f"callsim backend on {backend.url} (db {args.db}); appId {backend.app_id}, region "
        f"{backend.region}; apiKey {_keep_api_key(args, backend.api_key)}",
        flush=True,
    )
    if backend.https_port is not None:
        print(f"  TLS on {backend.host}:{backend.https_port} as https://{args.webrtc_host}/", flush=True)
    if backend.xmpp is not None:
        print(
            f"  XMPP door: wss://xmpp.{args.webrtc_host}/xmpp-websocket (Prosody + focus); "
            f"the published SDK's page: https://{args.webrtc_host}/sdk/?session=S&auth=AUTH_TOKEN",
            flush=True,
        )


def _keep_api_key(args: argparse.Namespace, key: str) -> str:
    """Where the operator finds the apiKey: never printed (logs are read by others), but
    written to a file only its owner can read, unless it was given on the command line."""
    if args.api_key:
        return "as given (--api-key)"
    path = Path(args.api_key_file or (f"{args.db}.apikey" if args.db != ":memory:" else "callsim.apikey"))
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return f"in {path} (readable by you alone)"


def _url_problem(option: str, url: str) -> str | None:
    """Why ``option``'s URL is not a usable base URL, or None."""
    from yarl import URL

    try:
        parsed = URL(url)
    except ValueError as exc:
        return f"{option} {url!r} is not a URL ({exc})"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return f"{option} {url!r} is not an http(s) URL with a host, e.g. http://127.0.0.1:8080/"
    return None


def _jitsi_target(args: argparse.Namespace) -> JitsiTarget | None:
    """``--target`` and its token options as a :class:`JitsiTarget`; ValueError if they conflict."""
    from yarl import URL

    from simulator.crowd.jitsi import JitsiTarget

    secret = args.jwt_secret or os.environ.get("CALLSIM_JWT_SECRET") or ""
    if args.target is None:
        used = [o for o, v in (("--xmpp-url", args.xmpp_url), ("--xmpp-domain", args.xmpp_domain),
                               ("--jwt-secret", args.jwt_secret), ("--anonymous", args.anonymous),
                               ("--insecure", args.insecure)) if v]  # fmt: skip
        if used:
            raise ValueError(f"{used[0]} is for --target (an external Jitsi-style deployment)")
        return None
    if args.backend is not None:
        raise ValueError("--target and --backend are two different runs: give one")
    base = args.target if args.target.endswith("/") else f"{args.target}/"
    return JitsiTarget(
        args.xmpp_url or base,
        args.xmpp_domain or str(URL(base).host),
        "jwt" if secret and not args.anonymous else "none" if args.anonymous else "rest",
        rest=base,
        jwt_secret=secret,
        jwt_app_id=args.jwt_app_id,
        verify_tls=not args.insecure,
    )


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import aiohttp
    from rich.console import Console

    from simulator.crowd.live import LiveRun
    from simulator.crowd.report import write_report
    from simulator.crowd.runner import (
        RunResult,
        RunSetupError,
        default_report_dir,
        run_scenario,
        summary_table,
    )
    from simulator.crowd.scenario import (
        DEFAULT_SCENARIO,
        DEFAULT_TARGET_SCENARIO,
        ScenarioError,
        load_scenario,
    )

    console = Console()
    for option, url in (
        ("--backend", args.backend),
        ("--target", args.target),
        ("--xmpp-url", args.xmpp_url),
    ):
        if url is not None and (problem := _url_problem(option, url)):
            return _fail(problem)
    try:
        target = _jitsi_target(args)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        default = DEFAULT_SCENARIO if target is None else DEFAULT_TARGET_SCENARIO
        scenario = load_scenario(Path(args.scenario)) if args.scenario else default
        scenario = scenario.with_overrides(
            participants=args.participants,
            sessions=args.sessions,
            duration=args.duration,
            seed=args.seed,
            media=args.media,
            door="jitsi" if target is not None else None,
            browsers=args.browsers,
        )
    except ScenarioError as exc:
        return _fail(f"scenario error: {exc}")
    console.print(
        f"callsim run: {scenario.scenario.name}, {scenario.participants} participants, "
        f"{scenario.scenario.duration:g} s, seed {scenario.scenario.seed}"
    )
    engine = None
    if args.engine == "ray":
        try:
            from simulator.crowd.ray_engine import RayEngine
        except ImportError:
            return _fail("--engine ray needs Ray: pip install 'callsim[ray]'")
        try:
            engine = RayEngine(args.address)
        except (ConnectionError, RuntimeError) as exc:
            return _fail(f"cannot start the run: no Ray cluster at {args.address}: {exc}")
    elif args.address is not None:
        return _fail("--address is for --engine ray")
    live = LiveRun()

    async def watched() -> RunResult:
        async with contextlib.AsyncExitStack() as stack:
            try:
                if args.metrics is not None:
                    url = await _listen(stack, "--metrics", args.metrics, _run_metrics(live, args.metrics))
                    console.print(f"metrics for Prometheus: {url}")
                if args.dashboard is not None:
                    from simulator.crowd.dashboard import dashboard

                    page = await _listen(
                        stack, "--dashboard", args.dashboard, dashboard(live, *args.dashboard)
                    )
                    console.print(f"dashboard: {page}")
            except _CannotListenError as exc:
                raise RunSetupError(str(exc)) from None
            return await run_scenario(
                scenario,
                workers=args.workers,
                pin=args.pin,
                backend_url=args.backend,
                api_key=args.api_key,
                console=None if args.no_live else console,
                log=console.print,
                engine=engine,
                target=target,
                live=live,
                sdk_bundle=Path(args.sdk_bundle),
            )

    try:
        result = eventloop.run(watched())
    except RunSetupError as exc:
        return _fail(f"cannot start the run: {exc}")
    except aiohttp.ClientConnectionError as exc:
        return _fail(f"cannot start the run: cannot reach the backend at {args.backend}: {exc}")
    except aiohttp.ClientError as exc:
        return _fail(f"cannot start the run: the backend at {args.backend} answered badly: {exc}")
    except KeyboardInterrupt:  # before the run's own Ctrl-C handling was in place: nothing ran
        console.print("interrupted before the run started")
        return EXIT_INTERRUPTED
    console.print()  # a piped log keeps the summary's title apart from what came before
    console.print(summary_table(result))
    page = write_report(result, Path(args.report) if args.report else default_report_dir())
    console.print(f"report: {page}")
    for expectation in (e for e in result.expectations if e.failed):
        console.print(
            f"[red]FAILED[/] {expectation.name}: {expectation.observed} (limit {expectation.limit})"
        )
    if result.interrupted:
        console.print(f"[yellow]{result.heading}[/]")
        return EXIT_INTERRUPTED
    return 0 if result.passed else 1


def _conform(args: argparse.Namespace) -> int:
    import importlib.util

    import pytest

    # Located, not imported: the plugin is loaded by pytest itself (its entry point), and a
    # module imported before pytest starts escapes its assertion rewriting.
    spec = importlib.util.find_spec("conformance")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    suite = Path(next(iter(spec.submodule_search_locations)))
    # The suite's own configuration and nothing else: see conformance/pytest.ini.
    options = ["-c", str(suite / "pytest.ini"), "--rootdir", str(suite), str(suite / "checks")]
    options += ["--sut-timeout", str(args.sut_timeout)]
    options += (
        ["--sut-cmd", args.sut_cmd] if args.sut_cmd else ["--sut", args.sut, "--sut-media", args.sut_media]
    )
    if args.report:
        options += ["--conformance-report", args.report]
    if args.profile is not None:
        options += ["--profile", args.profile]
    return int(pytest.main([*options, *args.pytest_args]))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callsim`` console script."""
    parser = argparse.ArgumentParser(prog="callsim", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a scenario of virtual participants (the main job)")
    run.add_argument("scenario", nargs="?", help="a TOML scenario file (default: the built-in scenario)")
    run.add_argument("--participants", type=int, help="participants per session (overrides the scenario)")
    run.add_argument("--sessions", type=int, help="number of sessions (overrides the scenario)")
    run.add_argument("--duration", type=float, help="seconds (overrides the scenario)")
    run.add_argument("--seed", type=int, help="the root seed (overrides the scenario)")
    run.add_argument(
        "--media", choices=MEDIA_PATHS, help="every group's media path (overrides the scenario; see README)"
    )
    run.add_argument("--workers", type=int, help="worker processes, or Ray tasks (default: one per core)")
    run.add_argument(
        "--engine", choices=("local", "ray"), default="local",
        help="where the shards run: processes on this machine (default), or Ray tasks (callsim[ray])",
    )  # fmt: skip
    run.add_argument(
        "--address", help="--engine ray: the cluster to join (default: a Ray instance started here)"
    )
    run.add_argument(
        "--pin", action="store_true", help="backend/SFU on the last core, workers on the others (Linux)"
    )
    run.add_argument("--backend", metavar="URL", help="a running callsim backend (default: the embedded one)")
    run.add_argument("--api-key", help="the running backend's apiKey (to provision users and auth tokens)")
    jitsi = run.add_argument_group(
        "an external Jitsi-style deployment (every participant speaks the Jitsi protocol)"
    )
    jitsi.add_argument("--target", metavar="URL", help="the deployment, e.g. https://meet.example.com/")
    jitsi.add_argument("--xmpp-url", metavar="URL", help="where its xmpp-websocket is (default: the target)")
    jitsi.add_argument("--xmpp-domain", help="its XMPP domain (default: the target's host name)")
    tokens = jitsi.add_mutually_exclusive_group()
    tokens.add_argument(
        "--jwt-secret",
        help="sign Jitsi JWTs (room claim) with this secret (or set CALLSIM_JWT_SECRET); "
        "default: CometChat-style call_tokens with --api-key",
    )
    tokens.add_argument("--anonymous", action="store_true", help="no token: the deployment's rooms are open")
    jitsi.add_argument("--jwt-app-id", default="callsim", help="the JWTs' iss and aud (default: callsim)")
    jitsi.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify TLS certificates (self-signed test deployments)",
    )
    run.add_argument("--report", metavar="DIR", help="the report folder (default: reports/run-<time>)")
    run.add_argument("--no-live", action="store_true", help="no live display (CI logs)")
    run.add_argument(
        "--browsers",
        type=int,
        metavar="N",
        help="canaries: N participants of each of the first group's sessions are the published SDK in "
        "Chromium (overrides the scenario; needs Chromium, the SDK and port 443)",
    )
    run.add_argument(
        "--sdk-bundle", default=str(SDK_BUNDLE), help="the canaries' published SDK (pack/index.js)"
    )
    run.add_argument(
        "--dashboard",
        metavar="[HOST:]PORT",
        type=_listen_address,
        help="serve a live page of the run (loopback by default), with a stop button",
    )
    run.add_argument(
        "--metrics",
        metavar="[HOST:]PORT",
        type=_listen_address,
        help="serve the run's metrics (and the embedded backend's) for Prometheus at /metrics (loopback "
        "by default)",
    )

    demo = commands.add_parser("demo", help="a few virtual participants in one call on the embedded backend")
    demo.add_argument(
        "--participants", type=int, default=3, choices=range(2, 9), metavar="N", help="2–8 (default 3)"
    )
    demo.add_argument("--seed", type=int, default=7, help="identities come from this seed")
    demo.add_argument(
        "--browser", action="store_true", help="the published SDK in Chromium with two virtual participants"
    )
    demo.add_argument("--seconds", type=float, default=12.0, help="--browser: how long the call lasts")
    demo.add_argument(
        "--sdk-bundle", default=str(SDK_BUNDLE), help="--browser: the published SDK's pack/index.js"
    )

    serve = commands.add_parser("serve", help="run the reference backend standalone")
    serve.add_argument("--host", default="127.0.0.1", help="interface (loopback by default)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--db", default="callsim.db", help="SQLite file (':memory:' for none)")
    serve.add_argument("--api-key", default=None, help="the apiKey for user provisioning (random if unset)")
    serve.add_argument(
        "--metrics",
        metavar="[HOST:]PORT",
        type=_listen_address,
        help="serve the backend's metrics for Prometheus at /metrics (loopback by default)",
    )
    serve.add_argument(
        "--api-key-file", default=None, help="where a random apiKey is written, 0600 (default: <db>.apikey)"
    )
    xmpp = serve.add_mutually_exclusive_group()
    xmpp.add_argument(
        "--xmpp", dest="xmpp", action="store_true", default=None,
        help="open the published SDK's door: Prosody + the focus (default: when Prosody is installed)",
    )  # fmt: skip
    xmpp.add_argument("--no-xmpp", dest="xmpp", action="store_false", help="native signalling only")
    serve.add_argument(
        "--webrtc-host", default="callsim.test", help="the bare host name given to the SDK (WEBRTC_HOST)"
    )
    serve.add_argument(
        "--https-port", type=int, default=None, help="the TLS port (default 443 with XMPP: the SDK needs it)"
    )
    serve.add_argument(
        "--sdk-bundle",
        default=str(SDK_BUNDLE),
        help="the published SDK's pack/index.js, served with a page at /sdk/",
    )

    conform = commands.add_parser("conform", help="run the conformance suite against an implementation")
    target = conform.add_mutually_exclusive_group()
    target.add_argument(
        "--sut",
        default="reference",
        help="'reference': the in-process reference (default); "
        "'published-js': the published JS SDK in headless Chromium",
    )
    target.add_argument("--sut-cmd", help="a program speaking conformance/PROTOCOL.md on stdio")
    conform.add_argument(
        "--report", metavar="DIR", help="write conformance.json, conformance.md, junit.xml here"
    )
    conform.add_argument("--sut-timeout", type=float, default=60.0, help="seconds a wire request may take")
    conform.add_argument(
        "--profile",
        metavar="CAPS",
        help="the profile to judge, narrower than the declared one: 'calls-core + callView'",
    )
    conform.add_argument(
        "--sut-media", choices=MEDIA_PATHS, default="full", help="the in-process reference's media path"
    )
    conform.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --), e.g. -k idle")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if args.command == "conform":
        return _conform(args)
    if args.command == "run":
        return _run(args)
    if args.command == "demo":
        if args.browser:
            return _browser_demo(args)
        from simulator.crowd.demo import main as demo_main

        return demo_main(args.participants, args.seed)
    return eventloop.run(_serve(args, Path(args.sdk_bundle).absolute()))


def _browser_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from simulator.crowd.browser_demo import BrowserDemoError, run_browser_demo
    from simulator.server.jitsi.prosody import ProsodyError

    try:
        return run_browser_demo(Path(args.sdk_bundle).absolute(), args.seconds, Console())
    except (BrowserDemoError, ProsodyError) as exc:
        return _fail(f"demo --browser: {exc}")
    except PermissionError:
        return _fail(
            "demo --browser: port 443 is needed: run `tools/in-private-network callsim demo --browser`"
        )


if __name__ == "__main__":
    raise SystemExit(main())

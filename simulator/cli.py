"""The ``callsim`` command: ``demo`` (the main job for now), ``serve`` (the standalone backend)
and ``conform`` (the conformance suite against an implementation)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Sequence

__all__ = ["main"]


async def _serve(host: str, port: int, db: str, api_key: str | None) -> None:
    from simulator.server import Backend

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Backend(host=host, port=port, db=db, api_key=api_key) as backend:
        print(f"callsim backend on {backend.url} (db {db}); apiKey {backend.api_key}", flush=True)
        await stop.wait()


def _conform(args: argparse.Namespace) -> int:
    import pytest

    from conformance.plugin import CHECKS_DIR

    options = [str(CHECKS_DIR), "-p", "no:cacheprovider", "--sut-timeout", str(args.sut_timeout)]
    options += ["--sut-cmd", args.sut_cmd] if args.sut_cmd else ["--sut", args.sut]
    if args.report:
        options += ["--conformance-report", args.report]
    return int(pytest.main([*options, *args.pytest_args]))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callsim`` console script."""
    parser = argparse.ArgumentParser(prog="callsim", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="a few virtual participants in one call on the embedded backend")
    demo.add_argument(
        "--participants", type=int, default=3, choices=range(2, 9), metavar="N", help="2–8 (default 3)"
    )
    demo.add_argument("--seed", type=int, default=7, help="identities come from this seed")

    serve = commands.add_parser("serve", help="run the reference backend standalone")
    serve.add_argument("--host", default="127.0.0.1", help="interface (loopback by default)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--db", default="callsim.db", help="SQLite file (':memory:' for none)")
    serve.add_argument("--api-key", default=None, help="the apiKey for user provisioning (random if unset)")

    conform = commands.add_parser("conform", help="run the conformance suite against an implementation")
    target = conform.add_mutually_exclusive_group()
    target.add_argument("--sut", default="reference", help="'reference': the in-process reference (default)")
    target.add_argument("--sut-cmd", help="a program speaking conformance/PROTOCOL.md on stdio")
    conform.add_argument(
        "--report", metavar="DIR", help="write conformance.json, conformance.md, junit.xml here"
    )
    conform.add_argument("--sut-timeout", type=float, default=60.0, help="seconds a wire request may take")
    conform.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --), e.g. -k idle")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    if args.command == "conform":
        return _conform(args)
    if args.command == "demo":
        from simulator.crowd.demo import main as demo_main

        return demo_main(args.participants, args.seed)
    asyncio.run(_serve(args.host, args.port, args.db, args.api_key))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

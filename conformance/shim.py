"""The reference wire shim: ``python -m conformance.shim`` serves the reference stack over
the protocol of PROTOCOL.md, so the wire path is tested in CI exactly as another
implementation would be driven. ``--fault NAME`` serves a known-bad variant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, Protocol

from conformance import jsonrpc
from conformance.driver import Emit
from conformance.known_bad import apply_fault
from conformance.reference.implementation import ReferenceImplementation

__all__ = ["Implementation", "serve"]


class Implementation(Protocol):
    """What :func:`serve` puts on the wire: the reference, or a shim of another SDK."""

    async def start(self) -> dict[str, Any]:
        """Start everything; the handshake's answer (PROTOCOL.md §2)."""

    async def handle(self, method: str, params: dict[str, Any]) -> Any:
        """One request; ContractError for a contract refusal, LookupError for an unknown method."""

    async def close(self) -> None:
        """Stop everything (idempotent)."""


async def serve(
    make: Callable[[Emit], Implementation],
    *,
    capabilities: list[str] | None = None,
    misbehave: str | None = None,
) -> None:
    """Serve the implementation ``make(emit)`` builds over stdin and stdout until ``shutdown``."""
    bad_action, _, bad_method = (misbehave or "").partition(":")
    out = sys.stdout.buffer

    def send(message: dict[str, Any]) -> None:
        out.write(jsonrpc.encode(message))
        out.flush()

    def emit(client: str, listener: str, callback: str, payload: Any) -> None:
        params = {"client": client, "listener": listener, "callback": callback, "payload": payload}
        send({"jsonrpc": "2.0", "method": "event", "params": params})

    implementation = make(emit)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            try:
                request = json.loads(line)
                request_id, method = request.get("id"), request["method"]
                params = request.get("params") or {}
            except (json.JSONDecodeError, KeyError, AttributeError) as exc:
                send(
                    {
                        "jsonrpc": "2.0",
                        "id": None,
                        "error": {"code": -32700, "message": f"parse error: {exc}"},
                    }
                )
                continue
            if method == bad_method:
                # The suite's own self-test: a shim that crashes, hangs or babbles.
                if bad_action == "crash":
                    raise SystemExit(3)
                if bad_action == "hang":
                    await asyncio.Event().wait()
                if bad_action == "garbage":
                    out.write(b"this is not JSON-RPC\n")
                    out.flush()
                    continue
            try:
                if method == "initialize":
                    result: Any = await implementation.start()
                    if capabilities is not None:
                        result["capabilities"] = capabilities
                elif method == "shutdown":
                    await implementation.close()
                    send({"jsonrpc": "2.0", "id": request_id, "result": None})
                    return
                else:
                    result = await implementation.handle(method, params)
                send({"jsonrpc": "2.0", "id": request_id, "result": result})
            except Exception as exc:  # every failure is answered; the shim stays up
                send(jsonrpc.error_reply(request_id, exc))
    finally:
        with contextlib.suppress(Exception):
            await implementation.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m conformance.shim", description=__doc__)
    parser.add_argument("--fault", help="serve the reference with this known fault (conformance/known_bad)")
    parser.add_argument(
        "--capabilities", help="declare only these (comma-separated; '' for none): the suite's self-test"
    )
    parser.add_argument(
        "--misbehave", help="crash:METHOD, hang:METHOD or garbage:METHOD: the suite's self-test"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    declared = None if args.capabilities is None else [c for c in args.capabilities.split(",") if c]
    if args.fault:
        apply_fault(args.fault)
    asyncio.run(serve(ReferenceImplementation, capabilities=declared, misbehave=args.misbehave))


if __name__ == "__main__":
    main()

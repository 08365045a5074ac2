"""Any implementation, in any language, behind JSON-RPC 2.0 on stdio (PROTOCOL.md).

The driver starts the program, performs the ``initialize`` handshake, sends requests
and reads responses and ``event`` notifications, one JSON object a line. A program
that exits, hangs past a timeout, or writes something that is not the protocol is a
:class:`DriverError` — an error in the report, never a pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
from collections import deque
from functools import cache
from pathlib import Path
from typing import Any, Final

import jsonschema

from conformance import jsonrpc
from conformance.driver import Capabilities, ContractError, DriverError, EventLog

__all__ = ["WireDriver"]

CALL_TIMEOUT: Final = 60.0
START_TIMEOUT: Final = 60.0
TRANSCRIPT_LINES: Final = 200


@cache
def _validators() -> tuple[Any, Any]:
    """(every line, the handshake answer) validators of protocol.schema.json."""
    schema = json.loads((Path(__file__).parent.parent / "protocol.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    handshake = {"$defs": schema["$defs"], **schema["$defs"]["handshake"]}
    return cls(schema), cls(handshake)


class WireDriver:
    """Drives the program ``command`` over its stdin and stdout."""

    def __init__(self, command: str, *, call_timeout: float = CALL_TIMEOUT) -> None:
        self.command = command
        self.log = EventLog()
        self._transcript: deque[str] = deque(maxlen=TRANSCRIPT_LINES)
        self._call_timeout = call_timeout
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stderr: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 1
        self._dead: str | None = None

    @property
    def transcript(self) -> list[str]:
        return list(self._transcript)

    @property
    def alive(self) -> bool:
        return self._dead is None and self._process is not None and self._process.returncode is None

    async def start(self) -> Capabilities:
        try:
            self._process = await asyncio.create_subprocess_exec(
                *shlex.split(self.command),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=16 * 1024 * 1024,
            )
        except (OSError, ValueError) as exc:  # no such program, not executable, unbalanced quotes
            self._dead = f"cannot start {self.command!r}: {exc}"
            raise DriverError(self._dead) from None
        self._reader = asyncio.ensure_future(self._read())
        self._stderr = asyncio.ensure_future(self._drain_stderr())
        hello = await self._request("initialize", {"protocol": 1}, START_TIMEOUT)
        problem = next(iter(_validators()[1].iter_errors(hello)), None)
        if problem is not None:
            raise DriverError(f"the handshake answer is not the protocol's: {problem.message} ({hello!r})")
        return Capabilities(
            str(hello.get("implementation", self.command)),
            str(hello.get("version", "?")),
            frozenset(str(c) for c in hello["capabilities"]),
            int(hello.get("protocol", 1)),
        )

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        return await self._request(method, params, self._call_timeout)

    async def _request(self, method: str, params: dict[str, Any], timeout: float) -> Any:
        if not self.alive or self._process is None or self._process.stdin is None:
            raise DriverError(f"the implementation is not running ({self._dead or 'not started'})")
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        line = jsonrpc.encode({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        self._transcript.append(f"→ {line.decode().rstrip()}")
        try:
            self._process.stdin.write(line)
            await self._process.stdin.drain()
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            why = f"{method} got no answer within {timeout:g} s (a hung implementation)"
            self._die(why)
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()  # a hung program is not trusted with the next check
            raise DriverError(why) from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise DriverError(f"the implementation's stdin closed: {exc}") from None
        finally:
            self._pending.pop(request_id, None)

    async def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        stdout = self._process.stdout
        try:
            while line := await stdout.readline():
                text = line.decode(errors="replace").rstrip()
                self._transcript.append(f"← {text}")
                try:
                    message = json.loads(text)
                    problem = next(iter(_validators()[0].iter_errors(message)), None)
                    if problem is not None:
                        raise ValueError(f"{problem.message} at {list(problem.absolute_path)}")
                    self._dispatch(message)
                except (ValueError, TypeError, KeyError, RecursionError) as exc:
                    self._die(f"not a protocol message ({exc}): {text[:200]}")
                    return
        finally:
            code = await self._process.wait()
            self._die(f"the implementation exited with code {code}")

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("method") == "event":
            params = message["params"]
            self.log.add(params["client"], params["listener"], params["callback"], params.get("payload"))
            return
        future = self._pending.get(message["id"])
        if future is None or future.done():
            return
        if "error" in message:
            error = message["error"]
            data = error.get("data") or {}
            if error.get("code") == jsonrpc.CONTRACT_ERROR:
                future.set_exception(
                    ContractError(str(data.get("code")), str(data.get("message", error.get("message"))),
                                  data.get("name"), data.get("details"))
                )  # fmt: skip
            else:
                future.set_exception(DriverError(f"{error.get('code')}: {error.get('message')}"))
        else:
            future.set_result(message.get("result"))

    def _die(self, why: str) -> None:
        if self._dead is None:
            self._dead = why
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DriverError(why))

    async def _drain_stderr(self) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        while line := await self._process.stderr.readline():
            self._transcript.append(f"! {line.decode(errors='replace').rstrip()}")

    async def close(self) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(DriverError):
                await self._request("shutdown", {}, 15)
            with contextlib.suppress(ProcessLookupError):
                if process.stdin is not None:
                    process.stdin.close()
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        for task in (self._reader, self._stderr):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._dead = self._dead or "closed"

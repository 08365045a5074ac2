"""Prosody, Debian's XMPP server, as a child process configured for one backend.

It serves the published SDK's XMPP over WebSocket (RFC 7395) on a loopback HTTP port (the
backend's TLS listener proxies ``wss://xmpp.<domain>/xmpp-websocket`` to it), a MUC at
``conference.<domain>`` and a component port for the focus (XEP-0114). Anonymous login is
gated by the call token in the WebSocket URL (``mod_callsim_token.lua``, beside this file).
Nothing is installed as a system service: the configuration and data live in a private
folder (0700) for the process's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Final, Self

__all__ = ["Prosody", "ProsodyError"]

START_TIMEOUT: Final = 20.0
STOP_TIMEOUT: Final = 5.0
MODULES: Final = Path(__file__).parent


class ProsodyError(RuntimeError):
    """Prosody is not installed, or did not start (the message says why and what to do)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def configuration(
    domain: str,
    *,
    folder: Path,
    component_port: int,
    http_port: int,
    component_secret: str,
    token_secret: str,
) -> str:
    """The Prosody configuration for ``domain`` (Lua), everything on loopback."""
    return f"""-- Written by callsim for one backend; regenerated at every start.
run_as_root = true -- only read when started as root (CI, a user namespace)
certificates = {_lua(str(folder / "certs"))} -- none: TLS ends at the backend
pidfile = {_lua(str(folder / "prosody.pid"))}
data_path = {_lua(str(folder / "data"))}
plugin_paths = {{ {_lua(str(MODULES))} }}
log = {{ info = {_lua(str(folder / "prosody.log"))} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ }}
s2s_ports = {{ }}
component_ports = {{ {component_port} }}
component_interfaces = {{ "127.0.0.1" }}
http_ports = {{ {http_port} }}
http_interfaces = {{ "127.0.0.1" }}
https_ports = {{ }}
-- TLS ends at the backend's listener, which proxies the WebSocket here on loopback.
consider_websocket_secure = true
c2s_require_encryption = false
modules_enabled = {{ "disco", "ping", "websocket", "saslauth" }}
modules_disabled = {{ "s2s", "offline", "tls" }}

VirtualHost {_lua(domain)}
    authentication = "anonymous"
    modules_enabled = {{ "callsim_token" }}
    callsim_token_secret = {_lua(token_secret)}

Component {_lua("conference." + domain)} "muc"
    modules_enabled = {{ "callsim_token" }}
    callsim_token_secret = {_lua(token_secret)}
    restrict_room_creation = false
    muc_room_locking = false
    muc_room_default_public_jids = true

Component {_lua("focus." + domain)}
    component_secret = {_lua(component_secret)}
"""


class Prosody:
    """One Prosody process: ``async with Prosody(domain, secret) as prosody:``."""

    def __init__(self, domain: str, token_secret: str) -> None:
        self.domain = domain
        self._token_secret = token_secret
        self.component_secret = secrets.token_hex(16)
        self.component_port = 0
        self.http_port = 0
        self._folder: Path | None = None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """Its process (None when not running): a load run reads its CPU."""
        return None if self._process is None else self._process.pid

    @property
    def websocket_url(self) -> str:
        """Where the backend's ``/xmpp-websocket`` proxies to."""
        return f"ws://127.0.0.1:{self.http_port}/xmpp-websocket"

    async def start(self) -> None:
        """Write the configuration, start Prosody, and wait until both of its ports answer."""
        executable = shutil.which("prosody")
        if executable is None:
            raise ProsodyError(
                "Prosody is not installed: apt-get install prosody (Debian), or run without XMPP"
            )
        self._folder = folder = Path(tempfile.mkdtemp(prefix="callsim-prosody-"))
        (folder / "data").mkdir(mode=0o700)
        (folder / "certs").mkdir(mode=0o700)
        self.component_port, self.http_port = _free_port(), _free_port()
        config = folder / "prosody.cfg.lua"
        config.touch(mode=0o600)  # it holds the token and component secrets
        config.write_text(
            configuration(
                self.domain,
                folder=folder,
                component_port=self.component_port,
                http_port=self.http_port,
                component_secret=self.component_secret,
                token_secret=self._token_secret,
            )
        )
        output = (folder / "prosody.out").open("wb")
        try:
            self._process = await asyncio.create_subprocess_exec(
                executable, "-F", "--config", str(config), stdin=asyncio.subprocess.DEVNULL,
                stdout=output, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        finally:
            output.close()
        try:
            async with asyncio.timeout(START_TIMEOUT):
                for port in (self.component_port, self.http_port):
                    await self._wait_for(port)
        except (TimeoutError, ProsodyError) as exc:
            why = self._tail()
            await self.close()
            raise ProsodyError(f"Prosody did not start ({exc or 'timed out'}): {why}") from None

    async def _wait_for(self, port: int) -> None:
        while True:
            if self._process is None or self._process.returncode is not None:
                raise ProsodyError("it exited")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)  # a child's start-up has no event to wait on
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    def _tail(self) -> str:
        if self._folder is None:
            return ""
        lines: list[str] = []
        for name in ("prosody.out", "prosody.log"):
            with contextlib.suppress(OSError):
                lines += (self._folder / name).read_text(errors="replace").splitlines()
        important = [line for line in lines if "error" in line.lower()] or lines
        return " | ".join(important[-3:])

    async def close(self) -> None:
        """Stop Prosody (SIGTERM, then SIGKILL) and remove its folder (idempotent)."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

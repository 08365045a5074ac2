"""What a check sees: a synchronous handle on the implementation under test.

The plugin runs the driver on an event loop in a background thread, so media and
sockets keep flowing between a check's steps; a check's calls submit work to that
loop and wait for the result with a timeout (never a sleep).

A check may call a capability's methods (``driver.CAPABILITY_METHODS``) only if it
declares that capability: :meth:`Sut.call` refuses the call otherwise, with
:class:`UndeclaredCapabilityError` — a bug in the check, reported as an error even against an
implementation that has the capability.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Final, TypeVar

from conformance.driver import Capabilities, Driver, DriverError, Event, capability_of

__all__ = ["Client", "LoopThread", "Sut", "UndeclaredCapabilityError"]

T = TypeVar("T")
AFTER_LEAVING: Final = frozenset({"onUserLeft", "onUserListUpdated", "onCallEnded"})
"""What a leaver may hear of the others after it left (K20, REFERENCE)."""
STEP_TIMEOUT: Final = 90.0
EVENT_TIMEOUT: Final = 15.0


class LoopThread:
    """An event loop running in its own thread for the whole test session."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="conformance-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = STEP_TIMEOUT) -> T:
        """Run ``coro`` on the loop; a step taking longer than ``timeout`` is a driver error."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        done, _ = concurrent.futures.wait([future], timeout)
        if not done:
            future.cancel()
            raise DriverError(f"a step got no answer within {timeout:g} s")
        return future.result()

    def close(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(drain(), 30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


class UndeclaredCapabilityError(Exception):
    """A check called a capability's method without declaring the capability: the check's bug."""


class Sut:
    """The implementation under test, as one check uses it.

    ``capabilities.capabilities`` is the run's profile (what the implementation declared,
    narrowed by ``--profile``); ``requires`` and ``optional`` are what the running check
    declared (``@check``).
    """

    def __init__(
        self,
        driver: Driver,
        loop: LoopThread,
        capabilities: Capabilities,
        *,
        requires: Iterable[str] = (),
        optional: Iterable[str] = (),
        check: str = "this check",
    ) -> None:
        self.driver = driver
        self.loop = loop
        self.capabilities = capabilities
        self.requires = frozenset(requires)
        self.optional = frozenset(optional)
        self.check = check
        self.violations: list[str] = []
        """Every refused call, kept so that a check swallowing the error is still an error."""
        self._asked: set[str] = set()
        self._sessions = itertools.count(1)

    def has(self, capability: str) -> bool:
        """Whether an ``optional`` capability of this check is in the profile (ask before use)."""
        if capability not in self.requires | self.optional:
            self._refuse(
                f"{self.check} asks for {capability!r} without declaring it "
                f"(@check(..., optional=[{capability!r}]))"
            )
        self._asked.add(capability)
        return capability in self.capabilities.capabilities

    def call(self, method: str, **params: Any) -> Any:
        """Call a protocol method; ContractError / DriverError propagate.

        UndeclaredCapabilityError if ``method`` belongs to a capability the check did not
        declare, or declared optional without ``has`` saying yes first — whatever the
        implementation has, so that the reference's runs catch it.
        """
        capability = capability_of(method)
        if capability is not None and capability not in self.requires:
            if capability not in self.optional:
                self._refuse(f"{self.check} uses {method} without requires({capability!r})")
            if capability not in self._asked or capability not in self.capabilities.capabilities:
                self._refuse(
                    f"{self.check} uses {method} of its optional capability {capability!r} "
                    f"without sut.has({capability!r}) saying yes"
                )
        return self.loop.run(self.driver.call(method, params))

    def _refuse(self, why: str) -> None:
        self.violations.append(why)
        raise UndeclaredCapabilityError(why)

    def session_id(self, hint: str = "session") -> str:
        """A session id no other step of this check uses."""
        return f"{hint}-{next(self._sessions)}"

    def user(self, uid: str, name: str | None = None) -> str:
        """Provision a user; its auth token."""
        result = self.call(
            "Harness.provisionUser", uid=uid, name=name or uid.title(), avatar=f"https://a.test/{uid}.png"
        )
        return str(result["authToken"])

    def client(self, name: str, *, init: bool = True) -> Client:
        """A new participant (Calls SDK and Chat SDK instance) named ``name``."""
        result = self.call("Harness.createClient", client=name, init=init)
        return Client(self, name, result["appSettings"])

    def advance(self, seconds: float) -> None:
        """Move the implementation's virtual clock."""
        self.call("Harness.advanceClock", seconds=seconds)

    def events(self) -> list[Event]:
        return list(self.driver.log.events)

    def wait_events(self, predicate: Callable[[list[Event]], bool], timeout: float = EVENT_TIMEOUT) -> None:
        """Wait until the events satisfy ``predicate``; a check failure (not a driver error) if not."""

        async def waited() -> bool:
            # The wait's own timeout is the check's verdict; only the step timeout (a
            # stuck loop) is a driver error, so the two must not share an exception.
            try:
                await self.driver.log.wait(predicate, timeout)
            except TimeoutError:
                return False
            return True

        if not self.loop.run(waited(), timeout + 30):
            raise AssertionError(f"timed out after {timeout:g} s waiting for events; got {self.events()}")


class Client:
    """One participant."""

    def __init__(self, sut: Sut, name: str, app_settings: dict[str, Any]) -> None:
        self.sut = sut
        self.name = name
        self.app_settings = app_settings
        self.uids = {name}
        """The users this client has started sessions as (its own uid, for K9)."""
        self._marks: list[tuple[int, bool]] = []
        """``(log position, in_session)`` at each start (True) and each leave (False), for K20."""

    # --- calls ----------------------------------------------------------------------------------

    def calls(self, method: str, **params: Any) -> Any:
        """``CometChatCalls.<method>`` for this client."""
        return self.sut.call(f"CometChatCalls.{method}", client=self.name, **params)

    def chat(self, method: str, **params: Any) -> Any:
        """``CometChat.<method>`` for this client."""
        return self.sut.call(f"CometChat.{method}", client=self.name, **params)

    def harness(self, method: str, **params: Any) -> Any:
        return self.sut.call(f"Harness.{method}", client=self.name, **params)

    def token(self, session_id: str, uid: str | None = None) -> str:
        auth = self.sut.user(uid or self.name)
        return str(self.calls("generateToken", sessionId=session_id, authToken=auth)["token"])

    def start(
        self, session_id: str, settings: dict[str, Any] | None = None, *, uid: str | None = None
    ) -> None:
        """``startSession`` with a recording settings listener (unless the settings say otherwise)."""
        spec = {"setCallListener": True, **(settings or {})}
        self.uids.add(uid or self.name)
        self._mark(in_session=True)
        self.calls("startSession", callToken=self.token(session_id, uid), callSettings=spec)

    def join(
        self, session_id: str, settings: dict[str, Any] | None = None, *, uid: str | None = None
    ) -> None:
        """Start a session and wait until the backend accepted the join."""
        self.start(session_id, settings, uid=uid)
        self.harness("waitJoined")

    def end(self, *, wait: bool = True) -> None:
        self._mark(in_session=False)
        self.calls("endSession")
        if wait:
            self.harness("waitClosed")

    # --- observation --------------------------------------------------------------------------

    def events(
        self, listener: str | None = "settings", callback: str | None = None, *, everything: bool = False
    ) -> list[Event]:
        """This client's events at ``listener`` (None: every listener), in arrival order.

        Left out unless ``everything``, because REFERENCE checks judge them and no other check
        may depend on them: an ``onUserJoined`` about this client's own user and the
        ``onUserListUpdated`` right after it at the same listener (K9: the published SDK
        fires them, the reference does not); and what this client hears of the others after
        it left (``end()``, or pressing ``endCall``/``leaveNow``) and before it starts again
        (K20: ``onUserLeft``, ``onUserListUpdated``, ``onCallEnded``, which the published SDK
        may fire at the leaver).
        """
        mine = [e for e in self.sut.events() if e.client == self.name]
        if not everything:
            mine = self._without_self_joins(self._without_news_after_leaving(mine))
        return [
            e
            for e in mine
            if (listener is None or e.listener == listener) and (callback is None or e.callback == callback)
        ]

    def _mark(self, *, in_session: bool) -> None:
        self._marks.append((len(self.sut.events()), in_session))

    def _without_news_after_leaving(self, events: list[Event]) -> list[Event]:
        def away(seq: int) -> bool:
            states = [in_session for position, in_session in self._marks if position <= seq]
            return bool(states) and not states[-1]

        return [e for e in events if not (e.callback in AFTER_LEAVING and away(e.seq))]

    def _without_self_joins(self, events: list[Event]) -> list[Event]:
        kept: list[Event] = []
        after_self_join: set[str] = set()  # listeners whose last event was onUserJoined about self
        for e in events:
            about_self = isinstance(e.payload, dict) and e.payload.get("uid") in self.uids
            if e.callback == "onUserJoined" and about_self:
                after_self_join.add(e.listener)
                continue
            pair = e.listener in after_self_join and e.callback == "onUserListUpdated"
            after_self_join.discard(e.listener)
            if not pair:
                kept.append(e)
        return kept

    def names(
        self,
        listener: str | None = "settings",
        *,
        ignore: tuple[str, ...] = ("onMediaDeviceListUpdated",),
        everything: bool = False,
    ) -> list[str]:
        """The callbacks this listener received, in order (device-list updates left out unless
        asked; ``everything`` as in :meth:`events`)."""
        return [e.callback for e in self.events(listener, everything=everything) if e.callback not in ignore]

    def wait(
        self,
        callback: str,
        count: int = 1,
        *,
        listener: str | None = "settings",
        timeout: float = EVENT_TIMEOUT,
    ) -> Event:
        """Wait until ``callback`` reached this listener ``count`` times; the last one."""
        self.sut.wait_events(lambda _: len(self.events(listener, callback)) >= count, timeout)
        return self.events(listener, callback)[count - 1]

    def members(self) -> set[str]:
        """The uids of the last ``onUserListUpdated`` this client's settings listener got.

        The list right after a K9 self-join counts here, though :meth:`events` leaves it out:
        what it lists is the SDK's current list (a joiner's last list is that one, on the
        published SDK), and no check reads the pair's callbacks through this."""
        mine = self._without_news_after_leaving([e for e in self.sut.events() if e.client == self.name])
        updates = [e for e in mine if e.listener == "settings" and e.callback == "onUserListUpdated"]
        return {u["uid"] for u in updates[-1].payload} if updates else set()

    def wait_members(self, *uids: str, timeout: float = EVENT_TIMEOUT) -> None:
        """Wait until the last ``onUserListUpdated`` lists exactly ``uids``."""
        self.sut.wait_events(lambda _: self.members() == set(uids), timeout)

    def media(self) -> dict[str, Any]:
        return dict(self.harness("media"))

    def wait_media(self, **conditions: Any) -> dict[str, Any]:
        return dict(self.harness("waitMedia", **conditions))

    def press(self, button: str) -> None:
        if button in ("endCall", "leaveNow"):
            self._mark(in_session=False)
        self.harness("press", button=button)

    def view(self) -> dict[str, Any]:
        return dict(self.harness("view"))

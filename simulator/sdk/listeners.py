"""``OngoingCallListener`` and the listener registry (contract §C, §D).

The registry follows §D to the letter, with the K resolutions:

* an insertion-ordered list of ``(id, listener)``; ``add`` removes every entry with
  that id, then appends (re-adding moves the id to the end, §D.3, K6); ids compare as
  strings on add and remove alike (K7);
* ``remove`` of an unknown id is a silent no-op; neither add nor remove raises (§D.4);
* a listener that cannot be built leaves its id unregistered (§D.5);
* dispatch calls the handlers in order, then the settings listener (§D.6), iterating
  a snapshot taken when dispatch began (§D.7);
* a callback that raises is logged and the dispatch carries on, including the
  clearing of item 9 (K8 — the one exception policy, in :meth:`ListenerRegistry.dispatch`);
* after ``on_call_ended``, ``on_session_timeout`` or ``on_call_end_button_pressed``
  the handlers are cleared; the settings listener is not (§D.9).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from simulator.sdk.names import CALLBACKS, CLEARING_CALLBACKS, to_camel

__all__ = ["ListenerRegistry", "OngoingCallListener"]

logger = logging.getLogger(__name__)

Callback = Callable[..., object]


@dataclass(frozen=True, slots=True)
class OngoingCallListener:
    """The 15 callbacks of §C; each optional. Callbacks are synchronous.

    Build one with keyword arguments, or copy one from any object with ``on_*``
    attributes (or a mapping, snake_case or camelCase keys) with :meth:`of`.
    """

    on_user_joined: Callback | None = None
    """``(user: CallUser)`` — a remote participant joined (also, at a joiner, each one already there)."""
    on_user_left: Callback | None = None
    """``(user: CallUser)`` — a remote participant left."""
    on_user_list_updated: Callback | None = None
    """``(users: list[ListedUser])`` — after every join and leave; includes the local user."""
    on_call_ended: Callback | None = None
    """``()`` — another's departure left this participant alone (K4)."""
    on_call_end_button_pressed: Callback | None = None
    """``()`` — the call view's end button, or Leave now on the idle prompt."""
    on_session_timeout: Callback | None = None
    """``()`` — the idle countdown ran out (§E.6)."""
    on_error: Callback | None = None
    """``(error: CometChatCallsException)``."""
    on_media_device_list_updated: Callback | None = None
    """``(devices: MediaDeviceList)`` — debounced 500 ms (§I)."""
    on_user_muted: Callback | None = None
    """``(event: UserMutedEvent)`` — a mute from the call view (K13)."""
    on_user_un_muted: Callback | None = None
    """``(event: UserMutedEvent)`` — an unmute from the call view (K12)."""
    on_screen_share_started: Callback | None = None
    """``()`` — local screen share is up (K34)."""
    on_screen_share_stopped: Callback | None = None
    """``()`` — local screen share stopped."""
    on_call_switched_to_video: Callback | None = None
    """``(event: CallSwitchedToVideoEvent)`` (K14)."""
    on_recording_started: Callback | None = None
    """``(event)`` — beyond the seed; the reference does not record."""
    on_recording_stopped: Callback | None = None
    """``()`` — beyond the seed."""

    @classmethod
    def of(cls, source: object) -> OngoingCallListener:
        """Copy the known callbacks of ``source``, dropping falsy values and unknown keys (§D.2)."""
        if isinstance(source, OngoingCallListener):
            return source
        if source is None:
            raise TypeError("a listener object is required")
        values: dict[str, Any] = {}
        for name, camel in CALLBACKS.items():
            if isinstance(source, Mapping):
                value = source.get(name, source.get(camel))
            else:
                value = getattr(source, name, None) or getattr(source, camel, None)
            if value:
                values[name] = value
        return cls(**values)

    def callbacks(self) -> dict[str, Callback]:
        """The callbacks that are set, by Python name."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


def _as_passed(listener: object) -> object:
    if listener is None:
        raise TypeError("a listener object is required")
    return listener


class ListenerRegistry:
    """Listeners by id, in registration order (§D; the Chat SDK's ``CallListener``s too, §D.12).

    ``store`` turns what the caller passed into what is kept: the Calls SDK keeps a
    copy of the 15 known callbacks (§D.2, the default); the Chat SDK keeps the object
    as passed (:meth:`as_passed`). ``clearing`` names the callbacks after which the
    registry empties (§D.9; none for the Chat SDK).
    """

    def __init__(
        self,
        *,
        store: Callable[[object], object] = OngoingCallListener.of,
        clearing: frozenset[str] = CLEARING_CALLBACKS,
    ) -> None:
        self._handlers: list[tuple[str, object]] = []
        self._store = store
        self._clearing = clearing

    @classmethod
    def as_passed(cls) -> ListenerRegistry:
        """A registry that keeps listener objects as passed and never clears (§D.12)."""
        return cls(store=_as_passed, clearing=frozenset())

    def add(self, listener_id: object, listener: object) -> None:
        """Register ``listener`` under ``listener_id``, replacing and moving any earlier one."""
        key = str(listener_id)
        self._handlers = [(k, v) for k, v in self._handlers if k != key]
        try:
            stored = self._store(listener)
        except TypeError:
            # §D.5: the old entry is gone and nothing replaces it.
            logger.warning("listener %r is not a listener object; the id is now unregistered", key)
            return
        self._handlers.append((key, stored))

    def remove(self, listener_id: object) -> None:
        """Unregister ``listener_id``; unknown ids are ignored."""
        key = str(listener_id)
        self._handlers = [(k, v) for k, v in self._handlers if k != key]

    def clear(self) -> None:
        self._handlers = []

    def ids(self) -> list[str]:
        """Registered ids in dispatch order."""
        return [k for k, _ in self._handlers]

    def __len__(self) -> int:
        return len(self._handlers)

    def dispatch(self, callback: str, *args: object, settings_listener: object = None) -> None:
        """Deliver one event: handlers in order, then the settings listener (§D.6–D.9)."""
        targets: list[tuple[str, object]] = list(self._handlers)  # the snapshot of §D.7
        if settings_listener is not None:
            targets.append(("<settings listener>", settings_listener))
        for key, listener in targets:
            _invoke(key, listener, callback, args)
        if callback in self._clearing:
            self.clear()

    @staticmethod
    def dispatch_to(listener: object, callback: str, *args: object) -> None:
        """Deliver one event to one listener only (``onError`` of the settings listener, §C)."""
        _invoke("<settings listener>", listener, callback, args)


def _invoke(key: str, listener: object, callback: str, args: tuple[object, ...]) -> None:
    function = _callback_of(listener, callback)
    if function is None:
        return
    try:
        function(*args)
    except Exception:
        # K8 — the one exception policy: isolate a failing listener; the others and
        # the clearing still happen.
        logger.exception("listener %r raised in %s", key, callback)


def _callback_of(listener: object, callback: str) -> Callable[..., object] | None:
    camel = to_camel(callback)
    if isinstance(listener, Mapping):
        value = listener.get(callback, listener.get(camel))
    else:
        value = getattr(listener, callback, None) or getattr(listener, camel, None)
    if not value:
        return None
    if not callable(value):
        # §D.11: a truthy non-function under a callback key fails at dispatch time.
        def broken(*_: object) -> object:
            raise TypeError(f"{callback} is not callable: {value!r}")

        return broken
    return value  # type: ignore[no-any-return]

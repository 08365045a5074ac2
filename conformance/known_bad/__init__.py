"""Known-bad implementations: the reference with one realistic fault each.

The suite proves its worth by failing every one of these (``tests/conformance``). A
fault is applied to the whole process (the self-test runs each in its own pytest
process, or in the wire shim with ``--fault NAME``); :data:`FAULTS` names each one,
says what it breaks, and which check is expected to catch it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.chat import client as chat_client
from simulator.chat import errors as chat_errors
from simulator.media import sources
from simulator.sdk import client as sdk_client
from simulator.sdk import constants, idle, listeners, session, settings, token_api
from simulator.sdk.errors import ApiError, InvalidArgumentError, Messages
from simulator.server import tokens

__all__ = ["FAULTS", "Fault", "apply_fault"]


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    caught_by: str
    """The check (ID) expected to fail."""
    apply: Callable[[], None]

    @property
    def node(self) -> str:
        """The pytest node of the check that must catch it, under conformance/checks (every
        parameter of a parametrised check): ``session.media.pause-really-freezes`` →
        ``session/test_media.py::test_pause_really_freezes``. The self-test runs it alone."""
        *modules, function = self.caught_by.split("[", 1)[0].replace("-", "_").split(".")
        *folders, module = modules
        return f"{'/'.join([*folders, f'test_{module}.py'])}::test_{function}"


def _wrong_idle_default() -> None:
    settings.CallSettings.__dataclass_fields__["idle_timeout_period"].default = 240
    settings.CallSettings.__init__.__defaults__ = tuple(
        240 if d == 180.0 else d for d in settings.CallSettings.__init__.__defaults__ or ()
    )
    settings.DEFAULT_IDLE_TIMEOUT = 240


def _append_instead_of_replace() -> None:
    def add(self: listeners.ListenerRegistry, listener_id: object, listener: object) -> None:
        self._handlers.append((str(listener_id), self._store(listener)))

    listeners.ListenerRegistry.add = add


def _prompt_too_early() -> None:
    idle.IDLE_PROMPT_LEAD = 90


def _call_ended_to_the_leaver() -> None:
    leave = session.CallSession.leave

    def leave_and_end(self: session.CallSession, reason: Any = "end") -> None:
        if self.active and self.participants:
            self._emit("on_call_ended")
        leave(self, reason)

    session.CallSession.leave = leave_and_end


def _mute_does_not_silence() -> None:
    def mute_audio(self: session.CallSession, muted: bool) -> None:
        if self.me is not None:
            self.me.audio_muted = muted  # the state says muted; the microphone keeps sending

    session.CallSession.mute_audio = mute_audio


def _pause_does_not_freeze() -> None:
    sources.CameraTrack.set_enabled = lambda self, enabled: None


def _leave_events_in_the_wrong_order() -> None:
    def on_left(self: session.CallSession, record: Any) -> None:
        if self.participants.pop(record.participant_id, None) is None:
            return
        self._emit("on_user_list_updated", self._listed())
        self._emit("on_user_left", session._user(record, joined=False))
        if not self.participants:
            self._emit("on_call_ended")
            self.idle.set_alone(True)

    session.CallSession._on_participant_left = on_left


def _token_for_another_session() -> None:
    issue = tokens.CallTokenAuthority.issue

    def issue_first_session(self: tokens.CallTokenAuthority, user: Any, session_id: str) -> str:
        return issue(self, user, "lobby")  # every token is for the same session

    tokens.CallTokenAuthority.issue = issue_first_session


def _idle_minimum_119() -> None:
    settings.MIN_IDLE_TIMEOUT = 119


def _handlers_not_cleared() -> None:
    original = listeners.ListenerRegistry.__init__

    def init(self: listeners.ListenerRegistry, **kwargs: Any) -> None:
        original(self, **kwargs)
        self._clearing = frozenset()

    listeners.ListenerRegistry.__init__ = init


def _handlers_cleared_on_end_session() -> None:
    leave = session.CallSession.leave

    def leave_and_clear(self: session.CallSession, reason: Any = "end") -> None:
        self._client.registry.clear()
        leave(self, reason)

    session.CallSession.leave = leave_and_clear


def _grid_is_grid() -> None:
    constants.CALL_MODE = constants.MappingProxyType(
        {"DEFAULT": "DEFAULT", "SPOTLIGHT": "SPOTLIGHT", "GRID": "GRID"}
    )
    from conformance.reference import implementation

    implementation.CALL_MODE = constants.CALL_MODE


def _join_does_not_cancel_the_countdown() -> None:
    set_alone = idle.IdleTimer.set_alone

    def keep_countdown(self: idle.IdleTimer, alone: bool) -> None:
        if not alone and self.state is idle.IdleState.PROMPT:
            return  # the bundle's behaviour: the visible countdown carries on
        set_alone(self, alone)

    idle.IdleTimer.set_alone = keep_countdown


def _never_unanswered() -> None:
    chat_client.ChatClient._ring_out = lambda self, session_id: None


def _screen_share_event_to_everyone() -> None:
    original = session.CallSession._redraw

    def redraw(self: session.CallSession) -> None:
        original(self)
        for record in self.participants.values():
            if record.screen_sharing and not getattr(self, "_told_share", False):
                self._told_share = True
                self._emit("on_screen_share_started")

    session.CallSession._redraw = redraw


def _user_joined_for_oneself() -> None:
    on_joined = session.CallSession._on_joined

    async def joined(self: session.CallSession, message: Any) -> None:
        self._emit("on_user_joined", session._user(message.me, joined=True))
        await on_joined(self, message)

    session.CallSession._on_joined = joined


def _wrong_auth_token_message() -> None:
    from simulator.sdk.errors import Messages

    Messages.AUTH_TOKEN_INVALID = "authToken must be a string"


def _throwing_listener_aborts() -> None:
    def invoke(key: str, listener: object, callback: str, args: tuple[object, ...]) -> None:
        function = listeners._callback_of(listener, callback)
        if function is not None:
            try:
                function(*args)
            except Exception as exc:
                raise _Abort from exc

    class _Abort(Exception):
        pass

    dispatch = listeners.ListenerRegistry.dispatch

    def aborting(
        self: listeners.ListenerRegistry, callback: str, *args: object, settings_listener: object = None
    ) -> None:
        with contextlib.suppress(_Abort):
            dispatch(self, callback, *args, settings_listener=settings_listener)

    listeners._invoke = invoke
    listeners.ListenerRegistry.dispatch = aborting


# --- one fault per class of weakness, each caught only by a check of its class -------------------


def _list_entries_named_by_uid() -> None:
    """Class 1: a list entry's fields were never read."""
    listed = session.CallSession._listed

    def named_by_uid(self: session.CallSession) -> list[Any]:
        return [dataclasses.replace(entry, name=entry.uid) for entry in listed(self)]

    session.CallSession._listed = named_by_uid  # type: ignore[method-assign]


def _session_id_checked_first() -> None:
    """Class 2: the argument checks in the wrong order (only shows with both bad)."""
    generate = sdk_client.CallsClient.generate_token

    async def session_first(self: sdk_client.CallsClient, session_id: object, auth_token: object) -> Any:
        self._require_init()
        if not isinstance(session_id, str):
            raise InvalidArgumentError(Messages.INVALID_ARGUMENT_EXCEPTION, Messages.SESSION_ID_INVALID)
        return await generate(self, session_id, auth_token)

    sdk_client.CallsClient.generate_token = session_first  # type: ignore[method-assign]


def _already_initiated_without_name() -> None:
    """Class 3: the right code, a wrong entry (no name, no details)."""
    entry = dict(chat_errors.CALL_ERROR["CALL_ALREADY_INITIATED"])
    chat_errors.CALL_ERROR["CALL_ALREADY_INITIATED"] = {**entry, "name": None, "details": None}


def _server_errors_replaced() -> None:
    """Class 3: the server's code and message replaced by the SDK's fallback."""
    call = token_api.TokenApi._call

    async def generic(self: token_api.TokenApi, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return await call(self, *args, **kwargs)
        except ApiError:
            raise ApiError(Messages.UNKNOWN_API_ERROR, Messages.UNKNOWN_API_MESSAGE) from None

    token_api.TokenApi._call = generic  # type: ignore[method-assign]


def _ringing_timeout_rounded_up() -> None:
    """Class 4: a fractional ringing timeout rounded up instead of floored."""

    def rounded(timeout: object) -> int:
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
            return math.ceil(timeout)
        return chat_client.DEFAULT_TIMEOUT

    chat_client.normalise_timeout = rounded


def _string_idle_period_parsed() -> None:
    """Class 4: a non-number idle period read as a number ("300" → 300 s)."""
    effective = settings.effective_idle_timeout

    def parsed(call_settings: settings.CallSettings) -> float:
        value = call_settings.idle_timeout_period
        if isinstance(value, str) and value.isdigit():
            return float(value)
        return effective(call_settings)

    session.effective_idle_timeout = parsed


def _group_rejection_ends_the_call() -> None:
    """Class 5: one member's rejection ends a group call at the initiator."""
    on_message = chat_client.ChatClient._on_call_message

    def ending(self: chat_client.ChatClient, call: Any) -> None:
        on_message(self, call)
        if call.receiver_type == "group" and call.status in ("rejected", "busy"):
            self._end_matching(call)

    chat_client.ChatClient._on_call_message = ending  # type: ignore[method-assign]


def _tokens_never_expire() -> None:
    """Class 6: the backend never looks at a token's exp (a lifetime beyond any clock move)."""
    init = tokens.CallTokenAuthority.__init__

    def forever(self: tokens.CallTokenAuthority, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.ttl = 10.0**12

    tokens.CallTokenAuthority.__init__ = forever  # type: ignore[method-assign]


def _mute_pauses_the_camera() -> None:
    """Class 7: muteAudio also stops the camera."""
    mute = session.CallSession.mute_audio

    def both(self: session.CallSession, muted: bool) -> None:
        mute(self, muted)
        if muted:
            self.pause_video(True)

    session.CallSession.mute_audio = both  # type: ignore[method-assign]


def _debounce_not_restarted() -> None:
    """Class 8: the device-list window is not restarted by a second change."""

    def first_change_wins(self: sdk_client.CallsClient) -> None:
        if self._device_timer is None:
            self._device_timer = self.clock.call_later(constants.DEVICE_LIST_DEBOUNCE, self._emit_device_list)

    sdk_client.CallsClient._schedule_device_update = first_change_wins  # type: ignore[method-assign]


def _tile_refused_at_runtime() -> None:
    """Class 9: setMode in a session takes DEFAULT and SPOTLIGHT only."""
    set_mode = session.CallSession.set_mode

    def two_modes(self: session.CallSession, mode: object) -> None:
        if mode in ("DEFAULT", "SPOTLIGHT"):
            set_mode(self, mode)

    session.CallSession.set_mode = two_modes  # type: ignore[method-assign]


def _call_ended_when_two_remain() -> None:
    """Class 10: onCallEnded when one *other* is left after a leave (right for two, wrong for three+)."""
    on_left = session.CallSession._on_participant_left

    def early(self: session.CallSession, record: Any) -> None:
        known = record.participant_id in self.participants
        on_left(self, record)
        if known and len(self.participants) == 1:
            self._emit("on_call_ended")

    session.CallSession._on_participant_left = early  # type: ignore[method-assign]


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in [
        Fault("wrong-idle-default", "the idle timeout defaults to 240 s", "settings.settings.seed-defaults[getIdleTimeoutPeriod]", _wrong_idle_default),
        Fault("listener-appended-not-replaced", "re-adding a listener id appends a second one",
              "listeners.registry.re-adding-an-id-replaces-it", _append_instead_of_replace),
        Fault("idle-prompt-too-early", "the idle prompt shows 90 s before the end", "idle.idle.prompt-at-t-minus-60", _prompt_too_early),
        Fault("call-ended-to-the-leaver", "onCallEnded is sent to the participant who leaves",
              "session.join-leave.end-session-emits-nothing-locally-k20", _call_ended_to_the_leaver),
        Fault("mute-does-not-silence", "muteAudio updates the state but the microphone keeps sending",
              "session.media.mute-really-silences", _mute_does_not_silence),
        Fault("pause-does-not-freeze", "pauseVideo leaves the camera running", "session.media.pause-really-freezes", _pause_does_not_freeze),
        Fault("leave-events-out-of-order", "onUserListUpdated comes before onUserLeft",
              "session.join-leave.leave-order-at-the-others", _leave_events_in_the_wrong_order),
        Fault("token-for-another-session", "every call token is issued for one fixed session",
              "token.token.tokens-differ-per-user-and-session", _token_for_another_session),
        Fault("idle-119-accepted", "an idle timeout of 119 s is accepted", "settings.settings.idle-119-refused", _idle_minimum_119),
        Fault("handlers-not-cleared", "handlers survive onCallEnded / onSessionTimeout / end button",
              "listeners.registry.handlers-cleared-after-on-call-ended-d9", _handlers_not_cleared),
        Fault("handlers-cleared-on-end-session", "endSession drops the addCallEventListener handlers",
              "listeners.registry.handlers-kept-after-end-session-d10", _handlers_cleared_on_end_session),
        Fault("grid-is-grid", "CALL_MODE.GRID is 'GRID' instead of 'TILE'", "session.in-call.call-mode-constants", _grid_is_grid),
        Fault("join-keeps-the-countdown", "a join does not cancel a visible idle countdown (the bundle's way)",
              "idle.idle.a-join-cancels-the-timeout-k15", _join_does_not_cancel_the_countdown),
        Fault("never-unanswered", "the ringing timer never marks the call unanswered",
              "ringing.ringing.unanswered-after-the-timeout", _never_unanswered),
        Fault("screen-share-event-to-everyone", "onScreenShareStarted reaches the other participants too",
              "session.in-call.screen-share-events-are-local", _screen_share_event_to_everyone),
        Fault("user-joined-for-oneself", "onUserJoined fires for the local user", "session.join-leave.no-on-user-joined-for-oneself-k9", _user_joined_for_oneself),
        Fault("wrong-auth-token-message", "a non-string authToken gets the wrong message",
              "token.token.non-string-arguments-exact-messages[auth-token-number]", _wrong_auth_token_message),
        Fault("throwing-listener-aborts-dispatch", "one throwing listener stops the others",
              "listeners.registry.a-throwing-listener-does-not-stop-the-others-k8", _throwing_listener_aborts),
        # one per class of weakness
        Fault("list-entries-named-by-uid", "onUserListUpdated entries carry the uid as the name",
              "session.payloads.every-list-entry-carries-its-participants-identity", _list_entries_named_by_uid),
        Fault("session-id-checked-first", "generateToken checks sessionID before authToken",
              "token.arguments.auth-token-is-checked-before-the-session-id[numbers]", _session_id_checked_first),
        Fault("already-initiated-without-name", "CALL_ALREADY_INITIATED has the right code but no name or details",
              "ringing.errors.call-already-initiated-whole-entry", _already_initiated_without_name),
        Fault("server-errors-replaced", "the server's error code and message become UNKNOWN_API_ERROR",
              "token.arguments.an-unknown-auth-token-relays-the-servers-error", _server_errors_replaced),
        Fault("ringing-timeout-rounded-up", "a fractional ringing timeout is rounded up",
              "ringing.timers.the-timeout-argument-is-normalised[fraction]", _ringing_timeout_rounded_up),
        Fault("string-idle-period-parsed", "a string idle period is read as a number",
              "idle.idle-timers.a-non-number-period-means-180[string]", _string_idle_period_parsed),
        Fault("group-rejection-ends-the-call", "one member's rejection ends a group call at the initiator",
              "ringing.groups.one-members-refusal-does-not-end-a-group-call", _group_rejection_ends_the_call),
        Fault("tokens-never-expire", "the backend never expires a call token",
              "token.expiry.an-expired-token-reaches-on-error-with-the-servers-error", _tokens_never_expire),
        Fault("mute-pauses-the-camera", "muteAudio also stops the camera",
              "session.other-medium.mute-audio-keeps-the-video-going", _mute_pauses_the_camera),
        Fault("debounce-not-restarted", "a second device change does not restart the 500 ms window",
              "session.devices.a-burst-of-changes-makes-one-update-with-the-last-state", _debounce_not_restarted),
        Fault("tile-refused-at-runtime", "setMode in a session ignores TILE",
              "session.modes.set-mode-in-a-session-takes-each-mode[GRID]", _tile_refused_at_runtime),
        Fault("call-ended-when-two-remain", "onCallEnded reaches those left when only two remain",
              "session.parties.four-leave-one-by-one-only-the-last-hears-the-end", _call_ended_when_two_remain),
    ]
}  # fmt: skip


def apply_fault(name: str) -> None:
    """Apply the fault ``name`` to this process."""
    try:
        fault = FAULTS[name]
    except KeyError:
        raise SystemExit(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}") from None
    fault.apply()

"""The headless call view: what ``start_session``'s HTML element shows, and its buttons.

It holds the default layout's state — participant tiles, the layout mode, which
buttons show (per the settings), the idle prompt and its countdown — and lets a test
or a virtual participant press the buttons the contract gives behaviour to (K13,
K21, §E). Pressing a button that is not shown raises :class:`InvalidStateError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from simulator.sdk.errors import InvalidStateError
from simulator.sdk.idle import IdleState

if TYPE_CHECKING:
    from simulator.sdk.settings import CallSettings

__all__ = ["Button", "CallView", "CallViewHost", "Tile"]

Button = Literal["end_call", "mute_audio", "pause_video", "screen_share", "mode", "switch_to_video"]

_SETTING_OF_BUTTON: dict[Button, str] = {
    "end_call": "show_end_call_button",
    "mute_audio": "show_mute_audio_button",
    "pause_video": "show_pause_video_button",
    "screen_share": "show_screen_share_button",
    "mode": "show_switch_mode_button",
    "switch_to_video": "show_switch_to_video_call_button",
}


@dataclass(frozen=True, slots=True)
class Tile:
    """One participant's tile."""

    participant_id: str
    uid: str
    name: str
    audio_muted: bool
    video_muted: bool
    screen_sharing: bool
    local: bool


class CallViewHost(Protocol):
    """What the session does when a button is pressed."""

    def press_end_call(self) -> None: ...
    def press_mute_audio(self) -> None: ...
    def press_pause_video(self) -> None: ...
    def press_screen_share(self) -> None: ...
    def press_mode(self) -> None: ...
    def press_switch_to_video(self) -> None: ...
    def press_stay(self) -> None: ...
    def press_leave_now(self) -> None: ...


class CallView:
    """A headless stand-in for the HTML element the call UI renders into."""

    def __init__(self, name: str = "call-screen") -> None:
        self.name = name
        self._host: CallViewHost | None = None
        self._settings: CallSettings | None = None
        self.tiles: tuple[Tile, ...] = ()
        self.mode: str = "DEFAULT"
        self.idle_state: IdleState = IdleState.OFF
        self.idle_seconds_left: int | None = None
        self.mounts = 0
        """How many times a session was rendered into this view (tests check unmounting)."""

    # --- what the session does to the view -------------------------------------------

    def mount(self, host: CallViewHost, settings: CallSettings) -> None:
        self._host = host
        self._settings = settings
        self.mode = str(settings.mode)
        self.mounts += 1

    def unmount(self) -> None:
        self._host = None
        self.tiles = ()
        self.idle_state = IdleState.OFF
        self.idle_seconds_left = None

    @property
    def mounted(self) -> bool:
        return self._host is not None

    # --- what a person sees ------------------------------------------------------------

    def shows(self, button: Button) -> bool:
        """Whether ``button`` is on screen: the default layout is on and its setting is true."""
        settings = self._settings
        if self._host is None or settings is None or settings.default_layout is False:
            return False
        return getattr(settings, _SETTING_OF_BUTTON[button]) is not False

    @property
    def prompt_visible(self) -> bool:
        """The idle prompt ("Are you still there?" or "meeting ended") is showing."""
        return self.idle_state in (IdleState.PROMPT, IdleState.EXPIRED)

    # --- what a person does ------------------------------------------------------------

    def _require(self, button: Button) -> CallViewHost:
        if self._host is None:
            raise InvalidStateError("VIEW_NOT_MOUNTED", "no call session is rendered in this view")
        if not self.shows(button):
            raise InvalidStateError(
                "BUTTON_HIDDEN", f"the {button} button is not shown (default layout or its setting)"
            )
        return self._host

    def press(self, button: Button) -> None:
        """Press one of the default layout's buttons."""
        host = self._require(button)
        getattr(host, f"press_{button}")()

    def press_stay(self) -> None:
        """The idle prompt's "Stay in the call"."""
        if self._host is None or self.idle_state is not IdleState.PROMPT:
            raise InvalidStateError(
                "PROMPT_NOT_SHOWN", f"the idle prompt is not shown ({self.idle_state.value})"
            )
        self._host.press_stay()

    def press_leave_now(self) -> None:
        """The idle prompt's "Leave now" (during the countdown or on the ended screen)."""
        if self._host is None or not self.prompt_visible:
            raise InvalidStateError(
                "PROMPT_NOT_SHOWN", f"the idle prompt is not shown ({self.idle_state.value})"
            )
        self._host.press_leave_now()

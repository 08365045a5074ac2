"""Scenarios: who joins which sessions, what they do, and what must hold.

One model, two front doors: a TOML file (:func:`load_scenario`) and the same structs
built in Python. Validation is msgspec's, so every error names the key and the problem
(``scenario.toml: sessions[0].participants: Expected `int` >= 1``) and unknown keys
are refused, not ignored.

```toml
[scenario]
name = "smoke"
seed = 7
duration = 30            # seconds; every run is bounded
join_rate = 5.0          # joins per second across the run

[[sessions]]
count = 2                # two sessions like this
participants = 3
profile = "audio-video"  # audio-only | audio-video | screen-sharer
media = "full"           # full (aiortc, decoded) | passthrough | lean (load)
full_sample = 0          # with media = "lean": this many per session take the full path
door = "native"          # native | jitsi (the published SDK's protocol) | ["native", "jitsi"] cycled
simulcast = false        # door "jitsi": cameras in three layers, as the published SDK sends them
browsers = 0             # canaries: this many per session are the published SDK in Chromium
networks = ["clean", "lossy-wifi"]  # cycled over the places: clean, lossy-wifi, 3g, satellite, [networks]

[behaviours]
mute = { every = [5.0, 15.0] }
pause = { every = [10.0, 30.0] }
churn = { every = [20.0, 40.0] }
screen_share = { every = [20.0, 40.0], hold = [3.0, 8.0] }
switch_to_video = true
hotplug = { every = [15.0, 30.0] }
ringing = { calls = 2, answers = ["accept", "reject", "ring-out"] }

[networks.hotel.base]   # a network of the scenario's own: one direction each, every field optional
down = { loss = 0.01, burst = 1.0, delay_ms = 20, jitter_ms = 5, duplicate = 0.0, rate_kbps = 0 }

[[networks.hotel.steps]]  # from 15 s after the media starts, for 10 s, this instead
at = 15.0
hold = 10.0
network.down = { loss = 0.15, burst = 3.0, rate_kbps = 300 }

[expectations]
join_time_p95_ms = 2000
first_audio_p95_ms = 3000
first_video_p95_ms = 3000
latency_p95_ms = 500
loss_max_percent = 1.0
freezes_max = 5
user_lists_converge = true
leaves_produce_events = true
muted_are_silent = true
ringing_ends_correctly = true

[expectations.canaries]  # with browsers > 0: what the published SDK's users saw
first_frame_p95_ms = 5000
freezes_per_minute_max = 2
audio_from_everyone = true
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from simulator.media.impairment import PROFILES, Schedule
from simulator.media.paths import MediaPath
from simulator.protocol import Transport

__all__ = [
    "DEFAULT_SCENARIO",
    "DEFAULT_TARGET_SCENARIO",
    "Behaviours",
    "Expectations",
    "Interval",
    "Ringing",
    "Scenario",
    "ScenarioError",
    "Sessions",
    "load_scenario",
]

Profile = Literal["audio-only", "audio-video", "screen-sharer"]
Door = Literal["native", "jitsi"]
"""How a virtual participant speaks to the backend: ``native``, callsim's own signalling
(docs/signalling.md); ``jitsi``, the published SDK's protocol (XMPP, the focus, Jingle:
docs/jitsi.md), which any Jitsi-style deployment speaks."""
Answer = Literal["accept", "reject", "ring-out"]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=24 * 3600)]
MAX_DURATION: Final = 24 * 3600


class ScenarioError(ValueError):
    """A scenario that cannot run; names the source, the key and the problem."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key or '(top level)'}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


class Interval(_Strict, frozen=True):
    """A random interval: each occurrence waits a uniform draw from ``every`` (seconds)."""

    every: tuple[Seconds, Seconds]
    hold: tuple[Seconds, Seconds] | None = None
    """How long the state lasts (screen share held, for instance)."""

    def __post_init__(self) -> None:
        for name, (low, high) in (("every", self.every), ("hold", self.hold or (1, 1))):
            if low > high:
                raise ValueError(f"{name} = [{low}, {high}]: the first bound must not exceed the second")


class Ringing(_Strict, frozen=True):
    calls: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
    """Ringing calls placed during the run (1:1, between participants of one session group)."""
    answers: tuple[Answer, ...] = ("accept",)
    """Answers cycled through, call by call."""


class Sessions(_Strict, frozen=True):
    """``count`` sessions of ``participants`` each, with one media profile."""

    count: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    participants: Annotated[int, msgspec.Meta(ge=1, le=500)] = 2
    profile: Profile = "audio-video"
    media: MediaPath = "full"
    """The media path (:mod:`simulator.media.paths`): ``full`` decodes and analyses all it gets."""
    transport: Transport = "bundled"
    """How each participant connects its media (docs/signalling.md): ``bundled``, one connection
    with receive slots; ``split``, a publish and a subscribe connection (the benchmarks' baseline)."""
    full_sample: Annotated[int, msgspec.Meta(ge=0, le=500)] = 0
    """Participants per session that take the ``full`` path whatever ``media`` says (realism on a sample)."""
    door: Door | tuple[Door, ...] = "native"
    """The door each participant speaks through; a list is cycled over the places of each
    session (``["native", "jitsi"]``: every other one speaks the Jitsi protocol). The Jitsi
    door's participants take the lean or the full path (not passthrough) and share no screens."""
    browsers: Annotated[int, msgspec.Meta(ge=0, le=500)] = 0
    """Canaries: the first ``browsers`` places of each of these sessions are the unmodified
    published Calls SDK in headless Chromium (the interop machinery: Chromium, the SDK's bundle,
    the backend's TLS listener on port 443), beside the virtual crowd; they join, stay, and are
    measured (``getStats``, callbacks) as its users would see the run."""
    simulcast: bool = False
    """The Jitsi door's cameras send three layers (180, 360, 720 lines) in a ``SIM`` group, as the
    published SDK does; the bridge forwards each receiver one (the native door sends one layer)."""
    networks: tuple[str, ...] = ()
    """Each participant's network, by name, cycled over the places of each session (``["clean",
    "3g"]``: every other one on 3G). Built in: clean, lossy-wifi, 3g, satellite
    (:data:`~simulator.media.impairment.PROFILES`); more in the scenario's ``[networks]``."""

    @property
    def doors(self) -> tuple[Door, ...]:
        """``door`` as a list (cycled over the places of a session)."""
        return self.door if isinstance(self.door, tuple) else (self.door,)

    def door_of(self, place: int) -> Door:
        """The door of the ``place``-th participant of one of these sessions."""
        return self.doors[place % len(self.doors)]


class Behaviours(_Strict, frozen=True):
    mute: Interval | None = None
    pause: Interval | None = None
    churn: Interval | None = None
    screen_share: Interval | None = None
    switch_to_video: bool = False
    hotplug: Interval | None = None
    buttons: bool = False
    ringing: Ringing = msgspec.field(default_factory=Ringing)


class NetworkExpectations(_Strict, frozen=True):
    """What must hold for the participants on one network (``[expectations.networks.3g]``)."""

    loss_max_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    """RTP loss they saw, after the SFU's retransmissions."""
    freezes_per_minute_max: Annotated[float, msgspec.Meta(ge=0)] | None = None
    """Video freezes they saw, per participant and minute of the run."""
    latency_p95_ms: Annotated[float, msgspec.Meta(gt=0)] | None = None


class CanaryExpectations(_Strict, frozen=True):
    """What must hold for the canaries, the published SDK in Chromium (``[expectations.canaries]``)."""

    first_frame_p95_ms: Annotated[float, msgspec.Meta(gt=0)] | None = None
    """Start of a canary's session → its first remote video frame decoded."""
    freezes_per_minute_max: Annotated[float, msgspec.Meta(ge=0)] | None = None
    """Video freezes Chromium counted, per canary and minute in the session."""
    audio_from_everyone: bool = True
    """Each canary got sound (audio energy) from every other participant of its session."""


class Expectations(_Strict, frozen=True):
    """What must hold for the run to pass (each becomes one JUnit test case)."""

    join_time_p95_ms: Annotated[float, msgspec.Meta(gt=0)] | None = None
    first_audio_p95_ms: Annotated[float, msgspec.Meta(gt=0)] | None = None
    first_video_p95_ms: Annotated[float, msgspec.Meta(gt=0)] | None = None
    latency_p95_ms: Annotated[float, msgspec.Meta(gt=0)] | None = None
    loss_max_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    freezes_max: Annotated[int, msgspec.Meta(ge=0)] | None = None
    user_lists_converge: bool = True
    leaves_produce_events: bool = True
    muted_are_silent: bool = True
    ringing_ends_correctly: bool = True
    canaries: CanaryExpectations = msgspec.field(default_factory=CanaryExpectations)
    """For the canaries of ``[[sessions]] browsers``, when there are any."""
    networks: dict[str, NetworkExpectations] = msgspec.field(default_factory=dict)
    """Per network of ``[[sessions]] networks``, by name (e.g. "with 5 % loss, ≤ 2 freezes a minute")."""


class Header(_Strict, frozen=True):
    name: str = "scenario"
    seed: int = 0
    duration: Annotated[float, msgspec.Meta(gt=0, le=MAX_DURATION)] = 60.0
    join_rate: Annotated[float, msgspec.Meta(gt=0, le=10_000)] = 5.0


class Scenario(_Strict, frozen=True):
    """A whole scenario."""

    scenario: Header = msgspec.field(default_factory=Header)
    sessions: tuple[Sessions, ...] = (Sessions(),)
    behaviours: Behaviours = msgspec.field(default_factory=Behaviours)
    expectations: Expectations = msgspec.field(default_factory=Expectations)
    networks: dict[str, Schedule] = msgspec.field(default_factory=dict)
    """Networks of the scenario's own, by name (``[networks.bad-hotel] base.down = { loss = 0.08 }``)."""

    def __post_init__(self) -> None:
        if not self.sessions:
            raise ValueError("at least one [[sessions]] table is needed")
        known = {**PROFILES, **self.networks}
        for group in self.sessions:
            if "jitsi" in group.doors and group.media == "passthrough":
                raise ValueError('door "jitsi" takes media = "lean" or "full" (not passthrough)')
            if group.browsers > group.participants:
                raise ValueError(
                    f"browsers = {group.browsers}: more canaries than participants ({group.participants})"
                )
            if group.simulcast and "jitsi" not in group.doors:
                raise ValueError('simulcast is the Jitsi door\'s: door = "jitsi" (or a list with it)')
            if "jitsi" in group.doors and group.profile == "screen-sharer":
                raise ValueError('door "jitsi" shares no screens: profile "audio-video" or "audio-only"')
            for name in group.networks:
                if name not in known:
                    raise ValueError(f"unknown network {name!r} (known: {', '.join(sorted(known))})")
        used = {name for group in self.sessions for name in group.networks}
        for name in self.expectations.networks:
            if name not in used:
                raise ValueError(f"expectations for network {name!r}, which no session uses")

    def network(self, name: str) -> Schedule:
        """The network called ``name`` (the scenario's own first, then the built-in ones)."""
        return self.networks.get(name) or PROFILES[name]

    @property
    def canaries(self) -> int:
        """Participants that are the published SDK in Chromium."""
        return sum(group.count * group.browsers for group in self.sessions)

    @property
    def uses_jitsi(self) -> bool:
        """Whether any participant speaks the Jitsi protocol (the backend then needs its XMPP door)."""
        return any("jitsi" in group.doors for group in self.sessions)

    @property
    def participants(self) -> int:
        return sum(group.count * group.participants for group in self.sessions)

    def with_overrides(
        self,
        *,
        participants: int | None = None,
        sessions: int | None = None,
        duration: float | None = None,
        seed: int | None = None,
        media: str | None = None,
        door: Door | None = None,
        browsers: int | None = None,
    ) -> Scenario:
        """The command line's ``--participants/--sessions/--duration/--seed/--media/--browsers``
        (the first group's canaries) over the file;
        ``door`` puts every participant through one door (``jitsi``: passthrough becomes lean)."""
        header = msgspec.structs.replace(
            self.scenario,
            **{k: v for k, v in (("duration", duration), ("seed", seed)) if v is not None},
        )
        groups = self.sessions
        if participants is not None or sessions is not None:
            first = groups[0]
            groups = (
                msgspec.structs.replace(
                    first,
                    count=sessions if sessions is not None else first.count,
                    participants=participants if participants is not None else first.participants,
                ),
            )
        if media is not None:
            groups = tuple(msgspec.structs.replace(group, media=media) for group in groups)
        if browsers is not None:
            groups = (msgspec.structs.replace(groups[0], browsers=browsers), *groups[1:])
        if door == "jitsi":
            groups = tuple(
                msgspec.structs.replace(
                    group, door=door, media="lean" if group.media == "passthrough" else group.media
                )
                for group in groups
            )
        elif door is not None:
            groups = tuple(msgspec.structs.replace(group, door=door) for group in groups)
        try:
            data = msgspec.to_builtins(msgspec.structs.replace(self, scenario=header, sessions=groups))
        except ValueError as exc:  # __post_init__'s, run by replace (convert would name the key)
            raise ScenarioError("command line", "", str(exc)) from None
        return _convert(data, "command line")


_PATH = re.compile(r" - at `\$\.?(.*)`$")


def _convert(data: object, source: str) -> Scenario:
    try:
        return msgspec.convert(data, Scenario)
    except msgspec.ValidationError as exc:
        raise _error(source, str(exc)) from None


def _error(source: str, message: str) -> ScenarioError:
    match = _PATH.search(message)
    key = match.group(1) if match else ""
    problem = _PATH.sub("", message)
    if problem.startswith("Object contains unknown field"):
        problem = problem.replace("Object contains unknown field", "unknown key") + " (a typo?)"
    return ScenarioError(source, key, problem)


def load_scenario(source: str | Path) -> Scenario:
    """A scenario from a TOML file (a path) or TOML text; :class:`ScenarioError` if it cannot run."""
    if isinstance(source, Path) or (not source.lstrip().startswith(("[", "#")) and source.endswith(".toml")):
        path = Path(source)
        name = path.name
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ScenarioError(name, "", f"cannot read the file: {exc.strerror}") from None
    else:
        name, text = "scenario", source.encode()
    try:
        return msgspec.toml.decode(text, type=Scenario)
    except msgspec.ValidationError as exc:
        raise _error(name, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ScenarioError(name, "", f"not valid TOML: {exc}") from None


DEFAULT_SCENARIO: Final = Scenario(
    scenario=Header(name="default", seed=7, duration=60.0, join_rate=4.0),
    sessions=(
        Sessions(count=1, participants=3, profile="audio-video"),
        Sessions(count=1, participants=2, profile="audio-only"),
        Sessions(count=1, participants=2, profile="screen-sharer"),
    ),
    behaviours=Behaviours(
        mute=Interval(every=(6.0, 12.0)),
        pause=Interval(every=(8.0, 16.0)),
        churn=Interval(every=(20.0, 30.0)),
        screen_share=Interval(every=(10.0, 20.0), hold=(3.0, 6.0)),
        switch_to_video=True,
        hotplug=Interval(every=(15.0, 25.0)),
        buttons=True,
        ringing=Ringing(calls=3, answers=("accept", "reject", "ring-out")),
    ),
    expectations=Expectations(
        join_time_p95_ms=3000, first_audio_p95_ms=5000, first_video_p95_ms=5000, latency_p95_ms=1000
    ),
)
"""Every flow of the contract in about a minute: the main job's scenario."""


DEFAULT_TARGET_SCENARIO: Final = Scenario(
    scenario=Header(name="target", seed=7, duration=60.0, join_rate=4.0),
    sessions=(
        Sessions(count=2, participants=4, media="lean", door="jitsi"),
        Sessions(count=1, participants=3, media="lean", profile="audio-only", door="jitsi"),
    ),
    behaviours=Behaviours(
        mute=Interval(every=(6.0, 12.0)),
        pause=Interval(every=(8.0, 16.0)),
        churn=Interval(every=(20.0, 30.0)),
    ),
    expectations=Expectations(join_time_p95_ms=5000, first_audio_p95_ms=8000),
)
"""``callsim run --target``'s scenario when none is given: what a Jitsi-style deployment can be
asked through its protocol alone (no ringing, no screen share), in about a minute."""

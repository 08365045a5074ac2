"""Scenarios (TOML + validation) and the deterministic plan."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.crowd import scenario as scenario_module
from simulator.crowd.plan import make_plan
from simulator.crowd.scenario import DEFAULT_SCENARIO, DEFAULT_TARGET_SCENARIO, ScenarioError, load_scenario
from simulator.media.impairment import PROFILES


def documented_example() -> str:
    match = re.search(r"```toml\n(.*?)```", scenario_module.__doc__ or "", re.S)
    assert match, "the module documents a TOML example"
    return match.group(1)


def test_the_documented_example_is_a_valid_scenario() -> None:
    scenario = load_scenario(documented_example())
    assert scenario.scenario.name == "smoke"
    assert scenario.participants == 6
    assert scenario.behaviours.ringing.answers == ("accept", "reject", "ring-out")
    assert scenario.expectations.latency_p95_ms == 500


def test_a_file_loads_and_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "smoke.toml"
    path.write_text(documented_example())
    assert load_scenario(path).scenario.seed == 7
    with pytest.raises(ScenarioError, match=r"nope\.toml: \(top level\): cannot read the file"):
        load_scenario(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("toml", "key", "problem"),
    [
        ("[[sessions]]\nparticipants = 0", "sessions[0].participants", "Expected `int` >= 1"),
        ("[[sessions]]\nparticipants = 501", "sessions[0].participants", "Expected `int` <= 500"),
        ("[[sessions]]\npartcipants = 2", "sessions[0]", "unknown key `partcipants` (a typo?)"),
        ("[[sessions]]\nprofile = 'hologram'", "sessions[0].profile", "Invalid enum value 'hologram'"),
        ("[[sessions]]\nmedia = 'fast'", "sessions[0].media", "Invalid enum value 'fast'"),
        ("[[sessions]]\nfull_sample = -1", "sessions[0].full_sample", "Expected `int` >= 0"),
        ("[scenario]\nduration = -1", "scenario.duration", "Expected `float` > 0.0"),
        ("[scenario]\njoin_rate = 'fast'", "scenario.join_rate", "Expected `float`, got `str`"),
        ("[behaviours]\nmute = { every = [10, 5] }", "behaviours.mute", "must not exceed the second"),
        ("[behaviours]\nmute = { every = [5] }", "behaviours.mute.every", "Expected `array` of length 2"),
        ("[behaviours.ringing]\nanswers = ['no']", "behaviours.ringing.answers[0]", "Invalid enum"),
        ("[expectations]\nloss_max_percent = 150", "expectations.loss_max_percent", "<= 100.0"),
        ("[expectations]\nfreezes_max = -1", "expectations.freezes_max", "Expected `int` >= 0"),
        ("sessions = []", "", "at least one [[sessions]] table is needed"),
        ("[[sessions]]\ndoor = 'sip'", "sessions[0].door", "Invalid enum value 'sip'"),
        ("[[sessions]]\ndoor = ['native', 'x']", "sessions[0].door[1]", "Invalid enum value 'x'"),
        (
            "[[sessions]]\ndoor = 'jitsi'\nmedia = 'passthrough'",
            "",
            'door "jitsi" takes media = "lean" or "full"',
        ),
        ("[[sessions]]\nsimulcast = true", "", "simulcast is the Jitsi door's"),
        (
            "[[sessions]]\ndoor = ['native', 'jitsi']\nmedia = 'lean'\nprofile = 'screen-sharer'",
            "",
            'door "jitsi" shares no screens',
        ),
        ("x = ", "", "not valid TOML"),
    ],
)
def test_every_bad_input_names_the_key_and_the_problem(toml: str, key: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(toml)
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"scenario: {key or '(top level)'}: ")


def test_a_media_path_per_group_with_a_decoded_sample() -> None:
    scenario = load_scenario(
        "[[sessions]]\ncount = 2\nparticipants = 4\nmedia = 'lean'\nfull_sample = 1\n"
        "[[sessions]]\nparticipants = 2\nmedia = 'passthrough'"
    )
    paths = Counter(p.media_path for p in make_plan(scenario).participants)
    assert paths == {"lean": 6, "full": 2, "passthrough": 2}
    assert {p.media_path for p in make_plan(scenario.with_overrides(media="full")).participants} == {"full"}


def test_doors_are_cycled_over_each_sessions_places_and_the_command_line_can_set_one() -> None:
    scenario = load_scenario(
        "[[sessions]]\ncount = 2\nparticipants = 3\nmedia = 'lean'\ndoor = ['native', 'jitsi']\n"
        "[[sessions]]\nparticipants = 2"
    )
    plan = make_plan(scenario)
    by_session: dict[str, list[str]] = {}
    for p in plan.participants:
        by_session.setdefault(p.session_id, []).append(p.door)
    assert list(by_session.values()) == [["native", "jitsi", "native"]] * 2 + [["native", "native"]]
    assert scenario.uses_jitsi and not DEFAULT_SCENARIO.uses_jitsi
    layered = load_scenario(
        "[[sessions]]\nparticipants = 2\nmedia = 'lean'\ndoor = ['native', 'jitsi']\nsimulcast = true"
    )
    assert [(p.door, p.simulcast) for p in make_plan(layered).participants] == [
        ("native", False),
        ("jitsi", True),
    ]
    # --target: every participant through the Jitsi door, on its own media path.
    everyone = scenario.with_overrides(door="jitsi")
    assert {(p.door, p.media_path) for p in make_plan(everyone).participants} == {
        ("jitsi", "lean"),
        ("jitsi", "full"),
    }
    sampled = load_scenario("[[sessions]]\nparticipants = 3\nmedia = 'lean'\nfull_sample = 1\ndoor = 'jitsi'")
    assert [p.media_path for p in make_plan(sampled).participants] == ["full", "lean", "lean"]
    assert {p.door for p in make_plan(DEFAULT_TARGET_SCENARIO).participants} == {"jitsi"}
    with pytest.raises(ScenarioError, match="shares no screens"):
        load_scenario("[[sessions]]\nprofile = 'screen-sharer'").with_overrides(door="jitsi")


def test_command_line_overrides_are_validated_too() -> None:
    scenario = DEFAULT_SCENARIO.with_overrides(participants=5, sessions=2, duration=10, seed=3)
    assert (scenario.participants, scenario.scenario.duration, scenario.scenario.seed) == (10, 10, 3)
    with pytest.raises(ScenarioError, match=r"command line: sessions\[0\]\.participants"):
        DEFAULT_SCENARIO.with_overrides(participants=0)


def test_the_default_scenario_exercises_every_flow_in_about_a_minute() -> None:
    plan = make_plan(DEFAULT_SCENARIO)
    kinds = Counter(action.kind for action in plan.actions)
    assert set(kinds) == {
        "join", "leave", "mute", "unmute", "pause", "resume", "share-start", "share-stop",
        "switch-to-video", "plug-device", "unplug-device", "press-mute", "ring", "answer", "snapshot",
    }  # fmt: skip
    assert {p.profile for p in plan.participants} == {"audio-only", "audio-video", "screen-sharer"}
    assert DEFAULT_SCENARIO.scenario.duration == 60
    assert {a.detail for a in plan.actions if a.kind == "ring"} == {"accept", "reject", "ring-out"}
    rings = sorted((a.at, a.uid, a.target, a.detail) for a in plan.actions if a.kind == "ring")
    answers = sorted((a.at, a.target, a.uid, a.detail) for a in plan.actions if a.kind == "answer")
    assert rings == answers  # every call's callee knows its answer


def test_the_same_seed_gives_the_same_identities_and_schedule() -> None:
    first, again = make_plan(DEFAULT_SCENARIO), make_plan(DEFAULT_SCENARIO)
    assert first == again
    other = make_plan(DEFAULT_SCENARIO.with_overrides(seed=8))
    assert [p.identity for p in other.participants] != [p.identity for p in first.participants]
    assert other.actions != first.actions


@given(seed=st.integers(0, 2**31), participants=st.integers(2, 6), duration=st.floats(5, 120))
@settings(max_examples=40, deadline=None)
def test_every_action_is_inside_the_run_and_everyone_ends_by_leaving(
    seed: int, participants: int, duration: float
) -> None:
    scenario = DEFAULT_SCENARIO.with_overrides(seed=seed, participants=participants, duration=duration)
    plan = make_plan(scenario)
    duration = scenario.scenario.duration
    assert all(0 <= a.at <= duration for a in plan.actions)
    for p in plan.participants:
        mine = [a for a in plan.actions if a.uid == p.identity.uid]
        assert mine[0].kind == "join"
        assert mine[0].at == p.join_at
        assert mine[-1].kind == "leave"
        joins = sum(a.kind == "join" for a in mine)
        assert joins == sum(a.kind == "leave" for a in mine)  # churn rejoins


def test_switch_to_video_only_in_audio_only_sessions() -> None:
    plan = make_plan(DEFAULT_SCENARIO)
    profile = {p.identity.uid: p.profile for p in plan.participants}
    assert {profile[a.uid] for a in plan.actions if a.kind == "switch-to-video"} == {"audio-only"}
    assert {profile[a.uid] for a in plan.actions if a.kind == "share-start"} == {"screen-sharer"}


@pytest.mark.parametrize("workers", [1, 2, 3, 50])
def test_shards_partition_participants_and_their_actions(workers: int) -> None:
    plan = make_plan(DEFAULT_SCENARIO)
    shards = plan.shards(workers)
    assert 1 <= len(shards) <= min(workers, len(plan.participants))
    uids = [p.identity.uid for shard in shards for p in shard.participants]
    assert sorted(uids) == sorted(p.identity.uid for p in plan.participants)
    assert sorted(a for shard in shards for a in shard.actions) == sorted(plan.actions)
    assert len({shard.seed for shard in shards}) == len(shards)


def test_networks_are_cycled_over_each_sessions_places_and_custom_ones_load() -> None:
    scenario = load_scenario(
        """
[[sessions]]
count = 2
participants = 3
networks = ["clean", "3g", "hotel"]

[networks.hotel.base]
down = { loss = 0.1, delay_ms = 40 }

[[networks.hotel.steps]]
at = 5.0
hold = 2.0
network.up = { rate_kbps = 100 }
"""
    )
    plan = make_plan(scenario)
    assert [p.network_name for p in plan.participants] == ["clean", "3g", "hotel"] * 2
    assert plan.participants[0].network is None  # clean: nothing in the way
    assert plan.participants[1].network == PROFILES["3g"]
    hotel = plan.participants[2].network
    assert hotel is not None and hotel.base.down.loss == 0.1
    assert hotel.at(6.0).up.rate_kbps == 100 and hotel.at(8.0).up.rate_kbps == 0


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[[sessions]]\nnetworks = ["moon"]', "unknown network 'moon'"),
        ("[[sessions]]\n[networks.x.base]\ndown = { loss = 2.0 }", "impairment out of range: loss=2.0"),
        ("[[sessions]]\n[networks.x.base]\ndown = { los = 0.1 }", "unknown key `los`"),
    ],
)
def test_bad_networks_are_refused_by_name(toml: str, problem: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(problem)):
        load_scenario(toml)


def test_a_plan_without_a_lost_workers_participants_keeps_only_who_ran() -> None:
    plan = make_plan(DEFAULT_SCENARIO)
    lost = {plan.participants[0].identity.uid}
    kept = plan.without(lost)
    assert [p.identity.uid for p in kept.participants] == [p.identity.uid for p in plan.participants[1:]]
    assert all(a.uid not in lost and a.target not in lost for a in kept.actions)
    assert len(kept.actions) < len(plan.actions)
    assert plan.without(set()) is plan

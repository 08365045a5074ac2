"""§D: the listener registry, rule by rule."""

from __future__ import annotations

import pytest

from simulator.sdk import ListenerRegistry, OngoingCallListener


def recorder(log: list[str], tag: str) -> OngoingCallListener:
    return OngoingCallListener(
        on_user_joined=lambda user: log.append(f"{tag}:joined:{user}"),
        on_call_ended=lambda: log.append(f"{tag}:ended"),
        on_call_end_button_pressed=lambda: log.append(f"{tag}:button"),
        on_session_timeout=lambda: log.append(f"{tag}:timeout"),
        on_user_left=lambda user: log.append(f"{tag}:left:{user}"),
    )


def test_dispatch_order_handlers_then_settings_listener() -> None:
    log: list[str] = []
    registry = ListenerRegistry()
    registry.add("a", recorder(log, "a"))
    registry.add("b", recorder(log, "b"))
    registry.dispatch("on_user_joined", "u1", settings_listener=recorder(log, "s"))
    assert log == ["a:joined:u1", "b:joined:u1", "s:joined:u1"]


def test_re_adding_an_id_replaces_and_moves_it_to_the_end() -> None:
    log: list[str] = []
    registry = ListenerRegistry()
    registry.add("a", recorder(log, "a1"))
    registry.add("b", recorder(log, "b"))
    registry.add("a", recorder(log, "a2"))
    assert registry.ids() == ["b", "a"]
    registry.dispatch("on_user_joined", "u")
    assert log == ["b:joined:u", "a2:joined:u"]


def test_ids_compare_as_strings_on_add_and_remove_k7() -> None:
    registry = ListenerRegistry()
    registry.add(1, OngoingCallListener())
    registry.add("1", OngoingCallListener())
    assert registry.ids() == ["1"]
    registry.remove(1)
    assert registry.ids() == []


def test_remove_unknown_is_a_silent_no_op() -> None:
    registry = ListenerRegistry()
    registry.add("a", OngoingCallListener())
    registry.remove("zzz")
    assert registry.ids() == ["a"]


def test_a_bad_listener_unregisters_its_id_d5() -> None:
    registry = ListenerRegistry()
    registry.add("a", OngoingCallListener())
    registry.add("a", None)
    assert registry.ids() == []


def test_registration_copies_only_known_callbacks_d2() -> None:
    log: list[str] = []

    class Plain:
        def on_user_joined(self, user: str) -> None:
            log.append(f"plain:{user}")

        def on_something_else(self) -> None:
            log.append("never")

    source = {
        "onUserLeft": lambda user: log.append(f"camel:{user}"),
        "onYouJoined": lambda: log.append("never"),
    }
    registry = ListenerRegistry()
    registry.add("plain", Plain())
    registry.add("mapping", source)
    source["onUserLeft"] = lambda user: log.append("mutated later")  # §D.2: a copy was taken
    registry.dispatch("on_user_joined", "x")
    registry.dispatch("on_user_left", "y")
    assert log == ["plain:x", "camel:y"]
    assert set(OngoingCallListener.of(source).callbacks()) == {"on_user_left"}


def test_dispatch_iterates_a_snapshot_d7() -> None:
    log: list[str] = []
    registry = ListenerRegistry()

    def add_and_remove(user: str) -> None:
        log.append(f"a:{user}")
        registry.remove("b")
        registry.add("c", recorder(log, "c"))

    registry.add("a", OngoingCallListener(on_user_joined=add_and_remove))
    registry.add("b", recorder(log, "b"))
    registry.dispatch("on_user_joined", "1")
    assert log == ["a:1", "b:joined:1"]  # b still ran, c did not
    log.clear()
    registry.dispatch("on_user_left", "2")
    assert log == ["c:left:2"]


@pytest.mark.parametrize("callback", ["on_call_ended", "on_session_timeout", "on_call_end_button_pressed"])
def test_clearing_events_drop_the_handlers_not_the_settings_listener_d9(callback: str) -> None:
    log: list[str] = []
    registry = ListenerRegistry()
    registry.add("a", recorder(log, "a"))
    settings = recorder(log, "s")
    registry.dispatch(callback, settings_listener=settings)  # type: ignore[arg-type]
    assert len(log) == 2
    assert registry.ids() == []
    registry.dispatch("on_user_joined", "u", settings_listener=settings)
    assert log[-1] == "s:joined:u"


def test_other_events_keep_the_handlers() -> None:
    registry = ListenerRegistry()
    registry.add("a", OngoingCallListener())
    registry.dispatch("on_user_left", "u")
    assert registry.ids() == ["a"]


def test_a_throwing_listener_is_isolated_and_clearing_still_happens_k8(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []

    def boom() -> None:
        raise RuntimeError("listener bug")

    registry = ListenerRegistry()
    registry.add("bad", OngoingCallListener(on_call_ended=boom))
    registry.add("good", recorder(log, "good"))
    registry.dispatch("on_call_ended", settings_listener=recorder(log, "s"))
    assert log == ["good:ended", "s:ended"]
    assert registry.ids() == []
    assert "listener bug" in caplog.text


def test_a_non_callable_value_fails_only_its_own_dispatch_d11(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    registry = ListenerRegistry()
    registry.add("odd", {"on_user_left": "not a function"})
    registry.add("good", recorder(log, "good"))
    registry.dispatch("on_user_left", "u")
    assert log == ["good:left:u"]
    assert "not callable" in caplog.text

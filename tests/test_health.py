"""The health gate's escalation rules, table-tested with explicit monotonic times."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.health import Action, HealthGate, HealthPolicy, Observation

POLICY = HealthPolicy(
    loop_stall_s=30, quiet_s=100, grace_s=50, poll_stall_s=20, outbox_fail_s=60
)


def obs(now: float, **kw: object) -> Observation:
    base: dict[str, object] = {
        "now_s": now,
        "loop_at_s": now,
        "scanner_alive": True,
        "poll_at_s": now,
        "heard_at_s": None,
    }
    base.update(kw)
    return Observation(**base)  # type: ignore[arg-type]


def run(steps: list[tuple[Observation, Action, bool, int]]) -> None:
    gate = HealthGate(POLICY, started_s=0.0)
    for i, (o, action, healthy, level) in enumerate(steps):
        v = gate.assess(o)
        assert (v.action, v.healthy, v.level) == (action, healthy, level), (
            f"step {i} at t={o.now_s}: {v}"
        )


def test_busy_room_stays_healthy() -> None:
    run([(obs(t, heard_at_s=t - 1), Action.NONE, True, 0) for t in range(0, 1000, 50)])


def test_dead_helper_escalates_to_give_up() -> None:
    run(
        [
            (obs(10, heard_at_s=9), Action.NONE, True, 0),
            # The helper dies: restart at once.
            (
                obs(11, scanner_alive=False, heard_at_s=9),
                Action.RESTART_SCANNER,
                True,
                1,
            ),
            # Still dead inside the grace period: wait.
            (obs(40, scanner_alive=False, heard_at_s=9), Action.NONE, True, 1),
            (obs(61, scanner_alive=False, heard_at_s=9), Action.RESET_ADAPTER, True, 2),
            (obs(100, scanner_alive=False, heard_at_s=9), Action.NONE, True, 2),
            (obs(111, scanner_alive=False, heard_at_s=9), Action.GIVE_UP, False, 3),
            # Latched: even a recovery does not resume pinging.
            (obs(120, heard_at_s=119), Action.NONE, False, 3),
        ]
    )


def test_restart_that_works_ends_escalation() -> None:
    run(
        [
            (
                obs(11, scanner_alive=False, heard_at_s=9),
                Action.RESTART_SCANNER,
                True,
                1,
            ),
            # The restarted scanner hears something: back to normal.
            (obs(15, heard_at_s=14), Action.NONE, True, 0),
            (obs(500, heard_at_s=499), Action.NONE, True, 0),
        ]
    )


def test_empty_room_never_stops_pings() -> None:
    # Nothing heard at all, helper answering: restart, reset, then periodic restarts,
    # but healthy throughout (a night in an empty shift room).
    run(
        [
            (obs(50), Action.NONE, True, 0),
            (obs(100), Action.RESTART_SCANNER, True, 1),
            (obs(149), Action.NONE, True, 1),
            (obs(150), Action.RESET_ADAPTER, True, 2),
            (obs(200), Action.NONE, True, 2),
            (obs(249), Action.NONE, True, 2),
            (obs(250), Action.RESTART_SCANNER, True, 2),
            (obs(5000), Action.RESTART_SCANNER, True, 2),
            (obs(5001), Action.NONE, True, 2),
        ]
    )


def test_beacon_unheard_but_phones_heard_is_reported_only() -> None:
    # The radio works (phones heard); the beacon itself may be down: say so, no action.
    gate = HealthGate(POLICY, started_s=0.0)
    for t in (50, 140, 400):
        v = gate.assess(obs(t, expects_beacon=True, beacon_at_s=40, heard_at_s=t - 1))
        assert (v.action, v.healthy, v.level) == (Action.NONE, True, 0)
    assert "site beacon unheard 360s" in v.summary


def test_beacon_unheard_and_nothing_else_gives_up() -> None:
    steps = [
        (obs(100, expects_beacon=True), Action.RESTART_SCANNER, True, 1),
        (obs(150, expects_beacon=True), Action.RESET_ADAPTER, True, 2),
        (obs(199, expects_beacon=True), Action.NONE, True, 2),
        (obs(200, expects_beacon=True), Action.GIVE_UP, False, 3),
    ]
    run(steps)


def test_site_beacon_heard_is_positive_proof() -> None:
    # Nothing else heard for ages, but the site beacon is: healthy, no action.
    run(
        [
            (
                obs(t, expects_beacon=True, beacon_at_s=t - 5, heard_at_s=t - 5),
                Action.NONE,
                True,
                0,
            )
            for t in (100, 500, 1000)
        ]
    )


def test_helper_not_answering_counts_as_dead() -> None:
    run(
        [
            (obs(30, poll_at_s=5, heard_at_s=5), Action.RESTART_SCANNER, True, 1),
            (obs(80, poll_at_s=5, heard_at_s=5), Action.RESET_ADAPTER, True, 2),
            (obs(130, poll_at_s=5, heard_at_s=5), Action.GIVE_UP, False, 3),
        ]
    )


@pytest.mark.parametrize(
    ("kw", "healthy"),
    [
        ({"loop_at_s": 69}, False),  # 31 s without progress
        ({"loop_at_s": 71}, True),
        ({"outbox_failing_since_s": 41}, False),  # failing 59 s = outbox_fail_s
        ({"outbox_failing_since_s": 50}, True),
    ],
)
def test_loop_and_outbox(kw: dict[str, float], healthy: bool) -> None:
    gate = HealthGate(dataclasses.replace(POLICY, outbox_fail_s=59), started_s=0)
    v = gate.assess(obs(100, heard_at_s=99, **kw))
    assert v.healthy is healthy, v
    if not healthy:
        assert v.action is Action.GIVE_UP
        assert v.reasons[0] == "watchdog pings stopped"


def test_outbox_error_below_threshold_is_reported_not_fatal() -> None:
    gate = HealthGate(POLICY, started_s=0)
    v = gate.assess(obs(100, heard_at_s=99, outbox_failing_since_s=90))
    assert v.healthy
    assert "outbox error 10s" in v.summary


def test_beacon_daemon_without_scanner() -> None:
    # The beacon daemon reuses the gate with scanner_alive=None: loop and outbox only.
    gate = HealthGate(POLICY, started_s=0)
    assert gate.assess(obs(10_000, scanner_alive=None, poll_at_s=None)).healthy
    assert not gate.assess(obs(10_100, scanner_alive=None, loop_at_s=10_000)).healthy

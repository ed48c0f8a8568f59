"""Pure: the health gate in front of the systemd watchdog (style.md §3.7).

The watchdog is pinged only while the unit is healthy:

1. the tick loop progressed recently (`loop_stall_s`),
2. the radio side is alive (the scanner's helper process for a gateway, the
   advertiser for a beacon), and
3. the outbox accepts writes (a failing commit for `outbox_fail_s` is unhealthy).

A scanner that goes quiet is healed in steps, each given `grace_s` to prove itself
(habluetooth's escalation): restart the scanner -> reset the adapter -> stop pinging,
so systemd kills and restarts the whole service (WatchdogSec, Restart=on-failure).

"Quiet" is judged carefully because an empty shift room at night is legitimately
silent and must not restart-loop the service:

- *Hard* evidence of a broken radio: the helper process is dead or not answering
  polls, or a beacon of this site (which always advertises in the room) has not
  been heard for `quiet_s`. Hard evidence escalates all the way to stopping pings.
- *Soft* evidence: nothing at all heard for `quiet_s` while the helper answers. That
  is cheap to act on (restart, reset), but never stops the pings on its own.
- A site beacon heard is positive proof that the radio works; any advertisement heard
  after an escalation step ends the escalation.

Time is a parameter (monotonic seconds); `HealthGate` holds only the escalation
state, so the whole rule is table-tested with explicit times (tests/test_health.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    """What the daemon shell should do after an assessment."""

    NONE = "none"
    RESTART_SCANNER = "restart_scanner"
    RESET_ADAPTER = "reset_adapter"
    GIVE_UP = "give_up"  # stop pinging: let systemd restart the service


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    # The tick runs every ~1 s; 30 s without progress means a hang (a stuck SQLite
    # lock, a blocking helper call), well inside the unit's WatchdogSec=90.
    loop_stall_s: float = 30.0
    # Silence that triggers the first step (gateway config scan.quiet_restart_s).
    quiet_s: float = 120.0
    # Time each step gets to show an advertisement before the next step.
    grace_s: float = 60.0
    # A helper that has not answered a poll this long counts as dead.
    poll_stall_s: float = 20.0
    # Outbox commits failing this long (disk full, I/O error): unhealthy.
    outbox_fail_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Observation:
    """What the shell measured this tick; all times monotonic seconds."""

    now_s: float
    loop_at_s: float
    # None for a unit with no scanner (the beacon daemon).
    scanner_alive: bool | None = True
    # Last time the helper answered a poll (even with nothing); None = not tracked.
    poll_at_s: float | None = None
    # Last advertisement of any kind; None = nothing since start.
    heard_at_s: float | None = None
    # Last advertisement of a configured site beacon; None = never.
    beacon_at_s: float | None = None
    # Whether the site has beacons that should be heard in this room.
    expects_beacon: bool = False
    # Last successful outbox commit, and the start of the current run of failures.
    outbox_ok_at_s: float | None = None
    outbox_failing_since_s: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    action: Action
    level: int  # 0 normal, 1 scanner restarted, 2 adapter reset, 3 given up
    reasons: tuple[str, ...]

    @property
    def summary(self) -> str:
        return "ok" if not self.reasons else "; ".join(self.reasons)


class HealthGate:
    """Stateful escalation over pure observations; one per daemon."""

    def __init__(self, policy: HealthPolicy, started_s: float) -> None:
        self.policy = policy
        self.started_s = started_s
        self.level = 0
        self.step_at_s = started_s  # when the current escalation step was taken
        self.given_up = False
        self.last_reasons: tuple[str, ...] = ()

    def assess(self, obs: Observation) -> Verdict:
        if self.given_up:
            # Latched: once the pings stop, systemd restarts the service; flapping
            # back to healthy would only postpone that.
            return Verdict(False, Action.NONE, 3, self.last_reasons)
        p = self.policy
        reasons: list[str] = []
        fatal = False
        loop_age = obs.now_s - obs.loop_at_s
        if loop_age > p.loop_stall_s:
            reasons.append(f"loop stalled {loop_age:.0f}s")
            fatal = True
        if obs.outbox_failing_since_s is not None:
            failing = obs.now_s - obs.outbox_failing_since_s
            if failing >= p.outbox_fail_s:
                reasons.append(f"outbox failing {failing:.0f}s")
                fatal = True
            else:
                reasons.append(f"outbox error {failing:.0f}s")

        action = Action.NONE
        if obs.scanner_alive is not None:
            action = self._escalate(obs, reasons)
        if fatal or action is Action.GIVE_UP:
            # A stalled loop or a failing outbox is not fixed in-process: let systemd.
            self.given_up = True
            self.level = 3
            action = Action.GIVE_UP
            reasons.insert(0, "watchdog pings stopped")
        self.last_reasons = tuple(reasons)
        return Verdict(
            healthy=not self.given_up,
            action=action,
            level=self.level,
            reasons=self.last_reasons,
        )

    def _escalate(self, obs: Observation, reasons: list[str]) -> Action:
        p = self.policy
        now = obs.now_s
        since = max(self.started_s, self.step_at_s)
        # Positive proof: something heard since the last step (or since start).
        heard_since_step = obs.heard_at_s is not None and obs.heard_at_s >= since
        beacon_recent = (
            obs.beacon_at_s is not None and now - obs.beacon_at_s < p.quiet_s
        )
        if self.level > 0 and (heard_since_step or beacon_recent):
            self.level = 0
            self.step_at_s = now
            since = now
        last_heard = obs.heard_at_s if obs.heard_at_s is not None else self.started_s
        silent_s = now - last_heard
        last_beacon = obs.beacon_at_s if obs.beacon_at_s is not None else self.started_s
        hard: str | None = None
        soft: str | None = None
        if not obs.scanner_alive:
            hard = "scanner helper dead"
        elif obs.poll_at_s is not None and now - obs.poll_at_s > p.poll_stall_s:
            hard = f"scanner not answering {now - obs.poll_at_s:.0f}s"
        elif silent_s >= p.quiet_s and not beacon_recent:
            if obs.expects_beacon:
                # The room's own beacon always advertises: silence is not an empty room.
                hard = f"silent {silent_s:.0f}s, site beacon unheard"
            else:
                soft = f"silent {silent_s:.0f}s"
        elif (
            obs.expects_beacon and not beacon_recent and now - last_beacon >= p.quiet_s
        ):
            # Others are heard, so the radio works; the beacon itself may be down.
            reasons.append(f"site beacon unheard {now - last_beacon:.0f}s")
        problem = hard or soft
        if problem is None:
            return Action.NONE
        reasons.append(problem)
        # A dead helper is acted on at once; silence waits quiet_s (measured above).
        wait_s = 0.0 if self.level == 0 else p.grace_s
        if now - self.step_at_s < wait_s:
            return Action.NONE
        if self.level == 0:
            self.level, self.step_at_s = 1, now
            return Action.RESTART_SCANNER
        if self.level == 1:
            self.level, self.step_at_s = 2, now
            return Action.RESET_ADAPTER
        if hard is not None:
            return Action.GIVE_UP
        # Soft only, both steps tried: probably an empty room. Stay up, keep pinging,
        # and try a scanner restart again every quiet period in case it was not.
        if now - self.step_at_s >= p.quiet_s:
            self.step_at_s = now
            return Action.RESTART_SCANNER
        return Action.NONE

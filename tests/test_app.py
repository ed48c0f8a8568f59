"""Pure parts of the daemon shell: recorded sources paced at their own speed, shifted to now."""

from __future__ import annotations

from gateway.app import PacedSource
from gateway.models import AddrType, Report


class ListSource:
    """A recorded source that hands out its reports in chunks, then ends."""

    def __init__(self, reports: list[Report], chunk: int = 2) -> None:
        self.reports = list(reports)
        self.chunk = chunk

    @property
    def ended(self) -> bool:
        return not self.reports

    def poll(self, timeout_s: float) -> list[Report]:
        out, self.reports = self.reports[: self.chunk], self.reports[self.chunk :]
        return out

    def close(self) -> None:
        self.reports = []


class Clock:
    def __init__(self) -> None:
        self.mono = 100.0
        self.slept: list[float] = []

    def wait(self, s: float) -> None:
        self.slept.append(s)
        self.mono += s


def rep(t: float) -> Report:
    return Report(
        t=t,
        addr="AA:BB:CC:DD:EE:FF",
        addr_type=AddrType.RANDOM,
        rssi=-60,
        data=b"\x02\x01\x06",
    )


def test_plays_at_its_own_pace_shifted_to_now() -> None:
    clock = Clock()
    trace = [rep(t) for t in (1000.0, 1000.5, 1003.0, 1003.0, 1010.0)]
    src = PacedSource(
        ListSource(trace),
        wall=lambda: 5_000.0 + clock.mono - 100.0,
        mono=lambda: clock.mono,
        wait=clock.wait,
    )
    # One poll is one tick: everything due within it, handed over at its end.
    assert [r.t for r in src.poll(1.0)] == [5000.0, 5000.5]  # the first is "now"
    assert clock.mono == 101.0
    assert src.poll(1.0) == []  # the next is due at +3 s: this tick is empty
    assert clock.mono == 102.0
    assert [r.t for r in src.poll(1.5)] == [5003.0, 5003.0]
    assert clock.mono == 103.5
    assert not src.ended
    out = src.poll(10.0)
    assert [r.t for r in out] == [5010.0]
    assert src.ended
    assert clock.mono == 110.0  # the source ended: no need to sleep out the tick
    # Ended: the daemon stays up idle, each poll just waits its tick.
    before = clock.mono
    assert src.poll(1.0) == []
    assert clock.mono == before + 1.0
    assert src.played == 5


def test_late_loop_catches_up_without_dropping() -> None:
    clock = Clock()
    trace = [rep(1000.0 + i * 0.1) for i in range(20)]
    src = PacedSource(
        ListSource(trace, chunk=7),
        wall=lambda: 0.0,
        mono=lambda: clock.mono,
        wait=clock.wait,
    )
    src.poll(0.0)
    clock.mono += 5.0  # the loop stalled: everything is due at once
    assert len(src.poll(0.0)) == 19

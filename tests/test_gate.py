"""Gate passages: hysteresis, dwell, the loiterer, direction."""

from __future__ import annotations

from gateway.gate import GateCounter, GateRules, pair_direction

RULES = GateRules(enter_dbm=-60, exit_dbm=-75, dwell_s=60, absent_s=600)


def feed(g, seq, ident="ibeacon:w:1:1"):
    return [r for t, rssi in seq if (r := g.add(t, ident, rssi)) is not None]


def test_single_passage_counts_once():
    g = GateCounter("gate-1", RULES)
    seq = [(0, -85), (1, -70), (2, -58), (3, -55), (4, -57), (5, -72), (6, -90)]
    recs = feed(g, seq)
    assert len(recs) == 1
    assert recs[0]["t"] == 3
    assert recs[0]["direction"] == "in"


def test_loiterer_is_counted_once():
    g = GateCounter("gate-1", RULES)
    # Ten minutes drifting between -55 and -74 (never below exit): one passage.
    seq = [(t, -55 if (t // 20) % 2 else -74) for t in range(0, 600, 2)]
    assert len(feed(g, seq)) == 1


def test_short_step_away_does_not_rearm_but_long_one_does():
    g = GateCounter("gate-1", RULES)
    seq = [(0, -55), (1, -55), (2, -55)]
    seq += [(t, -90) for t in range(10, 40, 2)]  # 30 s away < dwell
    seq += [(t, -55) for t in range(40, 50)]
    seq += [(t, -90) for t in range(60, 140, 2)]  # 80 s away > dwell
    seq += [(t, -55) for t in range(140, 150)]
    recs = feed(g, seq)
    assert [r["t"] for r in recs] == [0, 141]
    assert [r["direction"] for r in recs] == ["in", "out"]


def test_unheard_counts_as_away():
    g = GateCounter("gate-1", RULES)
    recs = feed(g, [(0, -55), (1, -55), (200, -55), (201, -55)])
    assert [r["direction"] for r in recs] == ["in", "out"]


def test_forgetting_is_bounded():
    g = GateCounter("gate-1", RULES)
    for i in range(100):
        g.add(float(i), f"k{i}", -90)
    g.advance(10_000)
    assert g.tracked == 0


def test_pair_direction():
    assert pair_direction(10.0, 14.0) == "in"
    assert pair_direction(14.0, 10.0) == "out"
    assert pair_direction(10.0, 100.0) is None

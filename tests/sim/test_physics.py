"""The simulator's radio model against the real Raspberry Pi data it is calibrated on."""

from __future__ import annotations

import collections
import csv
import random
import statistics
from pathlib import Path

import pytest

from gateway.sim import physics


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 4], statistics.median(ordered), ordered[(3 * n) // 4]


def _nist(data: Path) -> dict[float, list[int]]:
    by_distance: dict[float, list[int]] = collections.defaultdict(list)
    for path in sorted((data / "rssi" / "nist_rpi3_fd6f").glob("*.csv")):
        distance_m = int(path.name.split("_")[1].removesuffix("cm")) / 100
        with path.open(newline="") as handle:
            rows = [
                r
                for r in csv.DictReader(handle)
                if r["RSSI"].lstrip("-").isdigit() and int(r["RSSI"]) > -200
            ]
        # The README warns of a few nonsense rows with a foreign RPI: keep the pair's.
        main_rpi = collections.Counter(r["RPI"] for r in rows).most_common(1)[0][0]
        by_distance[distance_m] += [
            int(r["RSSI"]) for r in rows if r["RPI"] == main_rpi
        ]
    return by_distance


def _lanfer(data: Path, place: str) -> dict[int, list[tuple[float, int]]]:
    by_class: dict[int, list[tuple[float, int]]] = collections.defaultdict(list)
    root = data / "rssi" / "lanfer_multichannel" / "data" / place
    for path in sorted(root.rglob("Pi.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                d = int(row["distance"]) / 100
                cls = 0 if d < 1.5 else (1 if d <= 3.0 else 2)
                by_class[cls].append((d, int(row["rssiBLE"])))
    return by_class


def _simulate(
    env: str, distances: list[float], seed: int, n: int = 3000
) -> list[float]:
    rng = random.Random(seed)
    radio = physics.Radio(rng)
    out = []
    for _ in range(n):
        d = rng.choice(distances)
        mean = radio.link_mean_dbm(env, d, tx_offset_db=0.0, loss_db=0.0)
        out.append(radio.sample_rssi(env, mean))
    return out


def test_nist_line_of_sight_medians_within_measured_iqr(shared_data):
    measured = _nist(shared_data)
    assert sorted(measured) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    for distance_m, values in sorted(measured.items()):
        q1, _median, q3 = _quartiles(values)
        sim_q1, sim_median, sim_q3 = _quartiles(_simulate("los", [distance_m], 7))
        assert q1 <= sim_median <= q3, (distance_m, (q1, q3), sim_median)
        # and the spread is of the same order (not a constant curve)
        assert 0.4 * (q3 - q1) <= sim_q3 - sim_q1 <= 2.5 * (q3 - q1), distance_m


@pytest.mark.parametrize(
    ("place", "env"), [("office", "office"), ("bus", "bus"), ("parking", "yard")]
)
def test_lanfer_pi4_medians_within_measured_iqr_per_distance_class(
    shared_data, place, env
):
    measured = _lanfer(shared_data, place)
    assert set(measured) == {0, 1, 2}
    for cls, rows in sorted(measured.items()):
        q1, _median, q3 = _quartiles([float(r) for _d, r in rows])
        sim = _simulate(env, [d for d, _r in rows], 11)
        assert q1 <= _quartiles(sim)[1] <= q3, (place, cls, (q1, q3))


def test_monotone_with_distance_and_bus_body_shadows_outsiders():
    for env, profile in physics.PROFILES.items():
        losses = [physics.path_loss_db(profile, d) for d in (1, 2, 5, 10, 30)]
        assert losses == sorted(losses), env
    # Passers-by 3 m outside a bus with a 20 dB body read weaker than riders 8 m away.
    radio = physics.Radio(random.Random(3))
    rider = statistics.median(
        radio.sample_rssi("bus", radio.link_mean_dbm("bus", 8.0, 0.0, 0.0))
        for _ in range(500)
    )
    outside = statistics.median(
        radio.sample_rssi("bus", radio.link_mean_dbm("bus", 3.0, 0.0, 20.0))
        for _ in range(500)
    )
    assert outside < rider - 10


def test_packet_success_falls_with_crowding():
    alone = physics.packet_success(0.9, 0.05, 1, 376e-6, 0.1)
    crowd = physics.packet_success(0.9, 0.05, 200, 376e-6, 0.1)
    assert alone == pytest.approx(0.855)
    assert 0.1 < crowd < alone

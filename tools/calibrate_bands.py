"""Choose the default proximity-band thresholds for a Raspberry Pi receiver.

Reproduces docs/proximity.md from the real RSSI data sets in ../shared/data/rssi:

    .venv/bin/python tools/calibrate_bands.py            # rewrite docs/proximity.md
    .venv/bin/python tools/calibrate_bands.py --check    # exit 1 if the doc is stale

* `nist_rpi3_fd6f`: Raspberry Pi 3 to Raspberry Pi 3, Exposure Notification frames,
  line of sight at 0.5-4 m (one CSV per distance and receiving device).
* `lanfer_multichannel`: a Raspberry Pi 4 receiver hearing a Pi, an iPhone 6S and a
  OnePlus Nord in an office, a bus, a train and a parking lot.
* `dp3t_exp34`: phone-to-phone (Samsung receivers) in six social scenarios with
  camera-measured distances; not a Pi receiver, so it is scored, not fitted.

Ground truth bands: immediate < 1.5 m <= near <= 3 m < far (the classes of the
Lanfer data set, which follow GAEN's proximity wording). The thresholds are chosen
on the two Pi-receiver sets only: the pair (immediate_dbm, near_dbm) that maximises
the mean over the two sets of the macro-averaged F1 of the three bands, per sample
(one advertisement, no smoothing), each set weighted equally whatever its size.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gateway.bands import FAR, IMMEDIATE, NEAR, distance_band  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "rssi"
DOC = REPO / "docs" / "proximity.md"
NAMES = ("immediate", "near", "far")
# Search range of the thresholds (dBm, whole numbers: receivers report integers).
GRID = range(-100, -19)


@dataclass(frozen=True, slots=True)
class Sample:
    rssi_dbm: int
    band: int  # ground truth (gateway.bands indices)


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    samples: tuple[Sample, ...]
    note: str = ""
    skipped: int = 0


# ---------------------------------------------------------------- loading


def load_nist(root: Path) -> Dataset:
    """NIST: distance from the file name; drop the nonsense rows the README warns of."""
    samples: list[Sample] = []
    skipped = 0
    for path in sorted((root / "nist_rpi3_fd6f").glob("ContactTracingData_*cm_*.csv")):
        distance_m = int(path.name.split("_")[1].removesuffix("cm")) / 100.0
        band = distance_band(distance_m)
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        # The README: a few rows carry an RSSI like -4294967234 and a foreign RPI.
        rpis = Counter(r.get("RPI") for r in rows)
        main_rpi = rpis.most_common(1)[0][0] if rpis else None
        for row in rows:
            try:
                rssi = int(row["RSSI"])
            except (KeyError, TypeError, ValueError):
                skipped += 1
                continue
            if not -127 <= rssi < 0 or row.get("RPI") != main_rpi:
                skipped += 1
                continue
            samples.append(Sample(rssi, band))
    return Dataset("NIST Pi 3 -> Pi 3 (line of sight)", tuple(samples), skipped=skipped)


def _lanfer_rows(path: Path) -> tuple[list[tuple[int, int]], int]:
    """(distance_cm, rssiBLE) rows; a file's header may change midway (office/
    scenarios/OnePlus.csv restarts with `y,rssi,...`, where `rssi` is not named as
    the BLE column), and rows under a header without `rssiBLE` are skipped, counted."""
    out: list[tuple[int, int]] = []
    skipped = 0
    header: list[str] | None = None
    with path.open(newline="") as fh:
        for row in csv.reader(fh):
            if not row:
                continue
            if "distance" in row and not row[0].lstrip("-").isdigit():
                header = row
                continue
            if header is None or "rssiBLE" not in header:
                skipped += 1
                continue
            try:
                distance = int(row[header.index("distance")])
                rssi = int(row[header.index("rssiBLE")])
            except (IndexError, ValueError):
                skipped += 1
                continue
            if not -127 <= rssi < 0:
                skipped += 1
                continue
            out.append((distance, rssi))
    return out, skipped


def load_lanfer(
    root: Path, *, env: str | None = None, sender: str | None = None
) -> Dataset:
    samples: list[Sample] = []
    skipped = 0
    base = root / "lanfer_multichannel" / "data"
    for path in sorted(base.rglob("*.csv")):
        rel = path.relative_to(base).parts
        if env is not None and rel[0] != env:
            continue
        if sender is not None and path.stem != sender:
            continue
        rows, bad = _lanfer_rows(path)
        skipped += bad
        samples.extend(Sample(rssi, distance_band(d / 100.0)) for d, rssi in rows)
    label = "Lanfer Pi 4 receiver"
    if env is not None:
        label += f", {env}"
    if sender is not None:
        label += f", sender {sender}"
    return Dataset(label, tuple(samples), skipped=skipped)


def load_dp3t(root: Path, scenario: str | None = None) -> Dataset:
    samples: list[Sample] = []
    skipped = 0
    for path in sorted((root / "dp3t_exp34").glob("scenario*.sqlite")):
        name = path.stem.split("-", 1)[1]
        if scenario is not None and name != scenario:
            continue
        # Read-only URI: the shared data folder must stay untouched.
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for rssi, gtd in con.execute(
                "SELECT rssi, ground_truth_distance FROM results"
            ):
                if gtd is None or rssi is None or not -127 <= int(rssi) < 0:
                    skipped += 1
                    continue
                samples.append(Sample(int(rssi), distance_band(float(gtd))))
        finally:
            con.close()
    label = "DP-3T exp34 phone -> phone" + (f", {scenario}" if scenario else ", all")
    return Dataset(label, tuple(samples), skipped=skipped)


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class Score:
    precision: tuple[float | None, float | None, float | None]
    recall: tuple[float | None, float | None, float | None]
    support: tuple[int, int, int]

    @property
    def macro_f1(self) -> float:
        f1s = []
        for p, r, n in zip(self.precision, self.recall, self.support, strict=True):
            if n == 0:
                continue
            if not p or not r:
                f1s.append(0.0)
            else:
                f1s.append(2 * p * r / (p + r))
        return sum(f1s) / len(f1s) if f1s else 0.0


def classify(rssi_dbm: float, immediate_dbm: float, near_dbm: float) -> int:
    if rssi_dbm >= immediate_dbm:
        return IMMEDIATE
    if rssi_dbm >= near_dbm:
        return NEAR
    return FAR


def histogram(
    samples: Iterable[Sample], offset_db: int = 0
) -> Counter[tuple[int, int]]:
    return Counter((s.rssi_dbm + offset_db, s.band) for s in samples)


def score_hist(
    hist: Counter[tuple[int, int]], immediate_dbm: float, near_dbm: float
) -> Score:
    confusion = [[0, 0, 0] for _ in range(3)]  # [truth][predicted]
    for (rssi, truth), n in hist.items():
        confusion[truth][classify(rssi, immediate_dbm, near_dbm)] += n
    precision: list[float | None] = []
    recall: list[float | None] = []
    support: list[int] = []
    for b in (IMMEDIATE, NEAR, FAR):
        predicted = sum(confusion[t][b] for t in range(3))
        truth = sum(confusion[b])
        precision.append(confusion[b][b] / predicted if predicted else None)
        recall.append(confusion[b][b] / truth if truth else None)
        support.append(truth)
    return Score(
        (precision[0], precision[1], precision[2]),
        (recall[0], recall[1], recall[2]),
        (support[0], support[1], support[2]),
    )


def choose_thresholds(fit_sets: Sequence[Dataset]) -> tuple[int, int, float]:
    """(immediate_dbm, near_dbm, objective): grid search, ties to the stricter pair."""
    hists = [histogram(d.samples) for d in fit_sets]
    best: tuple[float, int, int] | None = None
    for imm in GRID:
        for near in GRID:
            if near >= imm:
                break
            obj = sum(score_hist(h, imm, near).macro_f1 for h in hists) / len(hists)
            key = (round(obj, 9), imm, near)
            if best is None or key > best:
                best = key
    assert best is not None
    return best[1], best[2], best[0]


def best_offset(ds: Dataset, immediate_dbm: int, near_dbm: int) -> tuple[int, float]:
    """The receiver offset (dB) that best fits a data set to the chosen thresholds."""
    best: tuple[float, int] | None = None
    for offset in range(-10, 41):
        f1 = score_hist(histogram(ds.samples, offset), immediate_dbm, near_dbm).macro_f1
        if best is None or (round(f1, 9), -abs(offset)) > (
            round(best[0], 9),
            -abs(best[1]),
        ):
            best = (f1, offset)
    assert best is not None
    return best[1], best[0]


def percentile(values: Sequence[int], q: float) -> float:
    ordered = sorted(values)
    idx = q * (len(ordered) - 1)
    lo = int(idx)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (idx - lo)


# ---------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class Calibration:
    immediate_dbm: int
    near_dbm: int
    objective: float
    markdown: str
    rows: dict[str, Score]


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _row(name: str, ds: Dataset, sc: Score, extra: str = "") -> str:
    cells = [f"{_fmt(sc.precision[b])} / {_fmt(sc.recall[b])}" for b in range(3)]
    n = "/".join(str(x) for x in sc.support)
    return (
        f"| {name}{extra} | {len(ds.samples)} ({n}) | "
        + " | ".join(cells)
        + f" | {sc.macro_f1:.2f} |"
    )


def calibrate(root: Path) -> Calibration:
    nist = load_nist(root)
    lanfer = load_lanfer(root)
    imm, near, objective = choose_thresholds([nist, lanfer])
    rows: dict[str, Score] = {}
    lines: list[str] = []

    def add(ds: Dataset, offset: int = 0, extra: str = "") -> Score:
        sc = score_hist(histogram(ds.samples, offset), imm, near)
        rows[ds.name + extra] = sc
        lines.append(_row(ds.name, ds, sc, extra))
        return sc

    add(nist)
    add(lanfer)
    for env in ("office", "bus", "train", "parking"):
        add(load_lanfer(root, env=env))
    for sender in ("Pi", "iPhone", "OnePlus"):
        add(load_lanfer(root, sender=sender))
    dp3t = load_dp3t(root)
    add(dp3t)
    dp3t_offset, _ = best_offset(dp3t, imm, near)
    add(dp3t, dp3t_offset, f" (+{dp3t_offset} dB receiver offset)")
    for scen in ("lunch", "train", "office", "queue", "party", "movement"):
        add(load_dp3t(root, scen), dp3t_offset, f" (+{dp3t_offset} dB)")

    # What RSSI cannot do: numbers behind each statement.
    def by_band(ds: Dataset) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {0: [], 1: [], 2: []}
        for s in ds.samples:
            out[s.band].append(s.rssi_dbm)
        return out

    nb = by_band(nist)
    nist_1m = [s.rssi_dbm for s in nist.samples if s.band == IMMEDIATE]
    spread_lo, spread_hi = percentile(nist_1m, 0.05), percentile(nist_1m, 0.95)
    far_over = sum(1 for r in nb[FAR] if r >= imm) / len(nb[FAR])
    lanfer_senders = {
        s: load_lanfer(root, sender=s) for s in ("Pi", "iPhone", "OnePlus")
    }
    close_medians = {
        s: statistics.median(x.rssi_dbm for x in d.samples if x.band == IMMEDIATE)
        for s, d in lanfer_senders.items()
    }
    db = by_band(dp3t)
    dp3t_imm_med = statistics.median(db[IMMEDIATE])
    dp3t_far_med = statistics.median(db[FAR])
    dp3t_best_imm, dp3t_best_near, dp3t_best = choose_thresholds([dp3t])
    lanfer_env = {
        env: statistics.median(
            x.rssi_dbm for x in load_lanfer(root, env=env).samples if x.band == NEAR
        )
        for env in ("office", "bus", "train", "parking")
    }
    skipped = f"{nist.skipped} NIST, {lanfer.skipped} Lanfer and {dp3t.skipped} DP-3T"
    pi_hist = histogram(nist.samples) + histogram(lanfer.samples)
    wrong = sum(
        n for (rssi, truth), n in pi_hist.items() if classify(rssi, imm, near) != truth
    ) / sum(pi_hist.values())
    spread_word = (
        "wider than" if spread_hi - spread_lo > imm - near else "about as wide as"
    )
    oneplus_gap = close_medians["Pi"] - close_medians["OnePlus"]
    oneplus_band = NAMES[classify(close_medians["OnePlus"], imm, near)]

    md = f"""# Proximity bands: what a Raspberry Pi can tell from RSSI

Generated by `tools/calibrate_bands.py` from the real data in `../shared/data/rssi/`;
do not edit by hand (`tests/test_calibration.py` recomputes every number below and
fails if this file is stale). Regenerate with
`.venv/bin/python tools/calibrate_bands.py`.

## The rule

A gateway puts every sighting in one band by its adjusted RSSI
(`rssi + bands.rssi_offset_db + bands.format_offset_db[format]`):

| band | adjusted RSSI | meant as |
|---|---|---|
| `immediate` | >= **{imm} dBm** | under 1.5 m |
| `near` | {near} .. {imm - 1} dBm | 1.5 to 3 m |
| `far` | < **{near} dBm** | beyond 3 m, or shadowed |

These are the defaults of `bands.immediate_dbm` / `bands.near_dbm`
(`gateway/bands.py`). They were chosen on the two data sets with a Raspberry Pi as
the receiver (NIST Pi 3 -> Pi 3, Lanfer et al. Pi 4 receiver) by a grid search over
whole dBm for the pair that maximises the mean, over the two sets, of the
macro-averaged F1 of the three bands, each advertisement scored on its own (no
smoothing). Objective at the chosen pair: **{objective:.3f}**. Ground truth bands:
immediate < 1.5 m <= near <= 3 m < far (the classes of the Lanfer data, which follow
GAEN's wording). Rows unusable and skipped: {skipped} (NIST rows with an RSSI of
-4294967234 or a foreign RPI, as its README warns; DP-3T rows without a camera
distance; Lanfer rows under a header that does not name the BLE column).

## Precision / recall per band at the chosen thresholds

Each cell is precision / recall of that band; `n` is the number of advertisements
(immediate/near/far by ground truth); "–" where the band has no samples or no
predictions.

| data set | n | immediate P / R | near P / R | far P / R | macro F1 |
|---|---|---|---|---|---|
{chr(10).join(lines)}

The DP-3T receivers are Samsung phones, not Pis: at the Pi thresholds they put
nearly everything in `far`. The receiver offset that best fits them is
**+{dp3t_offset} dB** (what `bands.rssi_offset_db` is for: one number per receiver
model or mounting, measured once at install).

## What RSSI cannot do (numbers from the same data)

- **It is not a distance.** NIST, line of sight, one Pi 3 pair at < 1.5 m: 90 % of
  the advertisements lie between {spread_lo:.0f} and {spread_hi:.0f} dBm, a spread
  of {spread_hi - spread_lo:.0f} dB, {spread_word} the whole `near` band
  ({imm - near} dB). And {far_over:.0%} of the advertisements sent from
  beyond 3 m still read as `immediate`.
- **The sender matters as much as the distance.** Lanfer, under 1.5 m, median RSSI
  at the Pi 4: Pi {close_medians["Pi"]:.0f} dBm, iPhone {close_medians["iPhone"]:.0f} dBm,
  OnePlus {close_medians["OnePlus"]:.0f} dBm: a OnePlus at arm's length reads
  {oneplus_gap:.0f} dB weaker than a Pi and lands in `{oneplus_band}`. Without a per-model correction (GAEN's TX power in the AEM, Google's
  calibration table) a band is a guess about the phone as much as about the distance.
- **The place matters.** Lanfer, 1.5-3 m, median RSSI: office
  {lanfer_env["office"]:.0f}, bus {lanfer_env["bus"]:.0f}, train {lanfer_env["train"]:.0f},
  parking lot {lanfer_env["parking"]:.0f} dBm. Metal cabins (bus, train) reflect; the
  same distance reads stronger than in the open.
- **Bodies and pockets.** DP-3T exp34 (phones in pockets, people moving): median
  RSSI under 1.5 m {dp3t_imm_med:.0f} dBm against {dp3t_far_med:.0f} dBm beyond 3 m,
  only {dp3t_imm_med - dp3t_far_med:.0f} dB apart. Even thresholds fitted to DP-3T
  itself ({dp3t_best_imm} / {dp3t_best_near} dBm) reach a macro F1 of only
  {dp3t_best:.2f}.
- **So BlueGate does not decide contacts by band.** In an enclosed zone (shift room,
  dormitory, bus) sharing the space for long enough is the Ministry of Health's F1
  rule, and the band is a supporting detail (`band_s` seconds per band in every
  presence record). Only in open zones (`yard`) does the near band matter, and there
  it is a coarse hint: on the two Pi-receiver sets {wrong:.0%} of the advertisements
  fall in the wrong band.
- Per-sample numbers: a stay aggregates tens to thousands of samples, and its
  `rssi_median` is far steadier than one advertisement, but a person standing still
  behind another person stays shadowed for the whole stay; aggregation does not fix
  a biased geometry.
"""
    return Calibration(imm, near, objective, md, rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is stale")
    args = parser.parse_args(argv)
    cal = calibrate(args.data)
    sys.stdout.write(
        f"immediate_dbm={cal.immediate_dbm} near_dbm={cal.near_dbm} "
        f"objective={cal.objective:.3f}\n"
    )
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != cal.markdown:
            sys.stderr.write(f"{args.out} is stale; run tools/calibrate_bands.py\n")
            return 1
        return 0
    args.out.write_text(cal.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`make demo` (`python -m central.demo [--once]`): a simulated site end to end.

A thin orchestrator over the real commands, each in its own process:

1. Mosquitto on a free loopback port (a temporary config; anonymous, plain TCP: the
   demo stays on 127.0.0.1 - production units use mutual TLS, deploy/);
2. the simulator (gateway/sim) writes one `jsonl` trace per gateway of the embedded
   site, and its ground truth;
3. central on SQLite: `bluegate-central serve`; every gateway is enrolled
   (`bluegate-gateway enroll` + `bluegate-central enroll`), so batches are signed
   and checked as in production;
4. one gateway process per gateway, `bluegate-gateway replay --source jsonl:...`:
   the whole edge pipeline at accelerated time, publishing through its outbox;
5. a beacon: enrolled, its current advertisement printed (advertising itself needs
   a Bluetooth adapter: `bluegate-beacon run` on a Pi);
6. a case: a bus commuter with Bluezone discloses a daily key; `bluegate-central
   contacts` prints the F1 list, compared with the simulator's truth;
7. the ops page stays up at http://127.0.0.1:PORT/ with a fresh ops token until
   Ctrl-C (`--once`: stop after printing, for scripts).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

from beacon import bluezone
from gateway.commands.simulate import write_traces
from gateway.sim.engine import Simulator, with_overrides
from gateway.sim.scenario import Scenario, load_scenario
from gateway.sim.truth import TruthWriter, load_jsonl, load_pairs

_LOGGER = logging.getLogger(__name__)

ENCLOSED = ("bus", "shift_room", "dormitory", "entrance")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(
    port: int, timeout_s: float, proc: subprocess.Popen[Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), 0.5),
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:g} s")


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Demo:
    def __init__(self, work: str, scenario: Scenario, *, quiet: bool) -> None:
        self.work = work
        self.scenario = scenario
        self.quiet = quiet
        self.procs: list[subprocess.Popen[Any]] = []
        self.mqtt_port = free_port()
        self.http_port = free_port()
        self.central_cfg = os.path.join(work, "central.yaml")
        self.truth = os.path.join(work, "truth")
        self.traces = os.path.join(work, "traces")
        self.logs = os.path.join(work, "logs")
        for d in (self.truth, self.traces, self.logs):
            os.makedirs(d, exist_ok=True)

    # ---------------------------------------------------------------- processes

    def cli(self, package: str, *args: str, check: bool = True) -> str:
        cmd = [sys.executable, "-m", package, *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd[2:])} failed ({done.returncode}): {done.stderr.strip()}"
            )
        return done.stdout

    def spawn(self, name: str, cmd: Sequence[str]) -> subprocess.Popen[Any]:
        log = open(os.path.join(self.logs, f"{name}.log"), "w", encoding="utf-8")  # noqa: SIM115
        proc = subprocess.Popen(
            list(cmd), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # ---------------------------------------------------------------- steps

    def broker(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(binary):
            raise RuntimeError("mosquitto is not installed (make deps installs it)")
        conf = os.path.join(self.work, "mosquitto.conf")
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write(
                f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\n"
                "persistence false\nlog_dest stderr\n"
            )
        proc = self.spawn("mosquitto", [binary, "-c", conf])
        wait_port(self.mqtt_port, 10, proc)
        say(f"[1/6] Mosquitto on 127.0.0.1:{self.mqtt_port}")

    def simulate(self) -> Simulator:
        started = time.monotonic()
        sim = Simulator(self.scenario, TruthWriter(self.truth))
        counts = write_traces(sim, self.traces, split=True)
        self.counts = counts
        say(
            f"[2/6] simulated {self.scenario.hours:g} h of site {self.scenario.site}: "
            f"{len(sim.people)} people, {sum(counts.values())} advertisement reports "
            f"at {len(counts)} gateways in {time.monotonic() - started:.0f} s"
        )
        return sim

    def central(self, sim: Simulator) -> None:
        db = os.path.join(self.work, "central.sqlite")
        with open(self.central_cfg, "w", encoding="utf-8") as fh:
            fh.write(
                f"storage: sqlite:///{db}\n"
                f"mqtt: {{host: 127.0.0.1, port: {self.mqtt_port}}}\n"
                f"http: {{port: {self.http_port}, bind: 127.0.0.1}}\n"
                "require_signatures: true\nlog_level: warning\n"
            )
        self.units: dict[str, str] = {}
        for zone in self.scenario.zones:
            for gw in zone.gateway_specs:
                unit = os.path.join(self.work, f"unit-{gw.id}.yaml")
                with open(unit, "w", encoding="utf-8") as fh:
                    fh.write(
                        f"site: {self.scenario.site}\ngateway: {gw.id}\n"
                        f"zone: {{name: {zone.name}, kind: {zone.kind}}}\n"
                        f"source: jsonl:{self.traces}/trace-{gw.id}.jsonl\n"
                        f"mqtt: {{host: 127.0.0.1, port: {self.mqtt_port}}}\n"
                        f"outbox: {{path: {self.work}/outbox-{gw.id}.sqlite}}\n"
                        f"identity: {{dir: {self.work}/keys-{gw.id}}}\n"
                    )
                self.units[gw.id] = unit
                public_key = self.cli(
                    "gateway", "enroll", "--config", unit
                ).splitlines()[0]
                self.cli(
                    "central",
                    "enroll",
                    "--config",
                    self.central_cfg,
                    "--gateway",
                    gw.id,
                    "--public-key",
                    public_key,
                )
        refdata = os.path.join(self.work, "refdata.yaml")
        with open(refdata, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "sites": [{"site": self.scenario.site, "name": self.scenario.site}],
                    "zones": [
                        {
                            "zone": z.name,
                            "site": self.scenario.site,
                            "kind": z.kind,
                            "enclosed": z.kind != "yard",
                        }
                        for z in self.scenario.zones
                    ],
                    # Worker tags are issued to people: tag keys resolve to names.
                    # Phones stay pseudonymous (their keys are never assigned).
                    "people": [
                        {"person": p.name, "kind": p.role}
                        for p in sim.people
                        if p.role in ("worker", "visitor", "contractor")
                    ],
                    "tags": [
                        {"key": d.key, "person": p.name, "from": self.scenario.date}
                        for p in sim.people
                        if p.role in ("worker", "visitor", "contractor")
                        for d in p.devices
                        if d.kind in ("ibeacon", "eddystone") and d.key
                    ],
                },
                fh,
            )
        self.cli("central", "import", "--config", self.central_cfg, refdata)
        proc = self.spawn(
            "central",
            [sys.executable, "-m", "central", "serve", "--config", self.central_cfg],
        )
        wait_port(self.http_port, 20, proc)
        say(
            f"[3/6] central on SQLite ({db}), {len(self.units)} gateways enrolled, "
            f"HTTP on 127.0.0.1:{self.http_port}"
        )

    def gateways(self, parallel: int) -> None:
        started = time.monotonic()
        pending = [g for g in self.units if self.counts.get(g)]
        running: dict[str, subprocess.Popen[Any]] = {}
        failed: list[str] = []
        while pending or running:
            while pending and len(running) < parallel:
                gw = pending.pop(0)
                running[gw] = self.spawn(
                    f"gateway-{gw}",
                    [
                        sys.executable,
                        "-m",
                        "gateway",
                        "replay",
                        "--source",
                        f"jsonl:{self.traces}/trace-{gw}.jsonl",
                        "--config",
                        self.units[gw],
                        "--deadline",
                        "600",
                    ],
                )
            for gw, proc in list(running.items()):
                if proc.poll() is not None:
                    del running[gw]
                    if proc.returncode != 0:
                        failed.append(gw)
            time.sleep(0.2)
        if failed:
            raise RuntimeError(
                f"gateway replay failed for {', '.join(failed)} (logs in {self.logs})"
            )
        say(
            f"[4/6] {len(self.units)} gateway pipelines replayed their traces and "
            f"delivered to the broker in {time.monotonic() - started:.0f} s"
        )

    def wait_ingest(self, timeout_s: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        stable_since = time.monotonic()
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            stats = json.loads(
                self.cli("central", "stats", "--config", self.central_cfg)
            )
            marker = json.dumps(stats.get("records"), sort_keys=True)
            if marker != last:
                last, stable_since = marker, time.monotonic()
            elif time.monotonic() - stable_since > 3.0 and stats.get("records"):
                break
            time.sleep(0.5)
        return stats

    def beacon(self) -> None:
        zone = next(z for z in self.scenario.zones if z.kind == "shift_room")
        cfg = os.path.join(self.work, "beacon.yaml")
        with open(cfg, "w", encoding="utf-8") as fh:
            fh.write(
                f"site: {self.scenario.site}\nbeacon: {zone.name}-beacon\n"
                f"zone: {{name: {zone.name}, kind: {zone.kind}}}\nscheme: bluezone\n"
                f"key_file: {self.work}/beacon-key.json\n"
            )
        self.cli("beacon", "enroll", "--config", cfg)
        # The key is created today: show what the beacon advertises now.
        at = dt.datetime.now(tz=dt.UTC).replace(microsecond=0)
        frame = self.cli(
            "beacon", "frame", "--config", cfg, "--at", at.isoformat()
        ).strip()
        say(
            f"[5/6] beacon {zone.name}-beacon enrolled; it advertises {frame} "
            f"now ({at:%H:%M} UTC); on a Pi: bluegate-beacon run --config {cfg}"
        )

    def case(self, sim: Simulator) -> tuple[str, int, int, int]:
        """A bus commuter with Bluezone Android discloses today's daily key."""
        bus_zones = {z.name for z in self.scenario.zones if z.kind == "bus"}
        person, device = None, None
        for p in sim.people:
            if p.role == "passer-by" or not any(s.zone in bus_zones for s in p.stays):
                continue
            for dev in p.devices:
                if dev.kind == "bluezone_android":
                    person, device = p, dev
                    break
            if person is not None:
                break
        if person is None or device is None:
            raise RuntimeError("no bus commuter with Bluezone Android in this scenario")
        day = int(self.scenario.start_unix // bluezone.DAY_S)
        daily = bluezone.daily_key_from_base(device.base_key, day - device.base_day)
        key_date = dt.datetime.fromtimestamp(day * bluezone.DAY_S, tz=dt.UTC).date()
        t0 = dt.datetime.fromtimestamp(sim.t_start, tz=dt.UTC)
        t1 = dt.datetime.fromtimestamp(sim.t_end, tz=dt.UTC)
        common = [
            "contacts",
            "--config",
            self.central_cfg,
            "--bluezone-daily-key",
            daily.hex(),
            "--key-date",
            key_date.isoformat(),
            "--from",
            t0.isoformat().replace("+00:00", "Z"),
            "--to",
            t1.isoformat().replace("+00:00", "Z"),
        ]
        answer = json.loads(self.cli("central", *common, "--format", "json"))
        table = self.cli("central", *common, "--format", "table")
        say(
            f"[6/6] case: {person.name} (Bluezone Android, rode a bus) discloses the "
            f"daily key of {key_date}; bluegate-central contacts:\n"
        )
        say(table.rstrip() + "\n")
        # Compare with the simulator's truth (the demo can: it made the day).
        owner = {
            k["key"]: k["person"]
            for k in load_jsonl(os.path.join(self.truth, "keys.jsonl"))
        }
        found = set()
        for contact in answer.get("contacts", []):
            for key in contact.get("keys") or [contact.get("key")]:
                if key in owner and owner[key] != person.name:
                    found.add(owner[key])
                    break
        minutes: dict[str, float] = {}
        for pair in load_pairs(self.truth):
            if person.name not in (pair["a"], pair["b"]):
                continue
            other = pair["b"] if pair["a"] == person.name else pair["a"]
            value = (
                pair["shared_min"] if pair["kind"] in ENCLOSED else pair["close_min"]
            )
            minutes[other] = minutes.get(other, 0.0) + value
        true = {o for o, m in minutes.items() if m >= 15.0}
        iphone_only = {
            p.name
            for p in sim.people
            if p.name in true - found
            and [d.kind for d in p.devices] == ["bluezone_ios"]
        }
        say(
            f"simulator truth: {len(true)} true F1 of {person.name}; the list has "
            f"{len(found & true)} of them and {len(found - true)} others"
            + (
                f"; {len(iphone_only)} of the missing carry only a Bluezone iPhone, "
                "whose ID needs a GATT read: a live gateway reads it, a replayed "
                "trace cannot (tools/accuracy.py feeds the GATT resolver from the "
                "simulator and scores every person of the day)"
                if iphone_only
                else ""
            )
        )
        return person.name, len(true), len(found & true), len(found - true)

    def ops(self) -> str:
        return (
            self.cli(
                "central",
                "token",
                "create",
                "--config",
                self.central_cfg,
                "--role",
                "ops",
            )
            .strip()
            .splitlines()[-1]
        )


@contextlib.contextmanager
def workdir(path: str | None) -> Iterator[str]:
    if path:
        os.makedirs(path, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="bluegate-demo-") as tmp:
        yield tmp


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m central.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--once", action="store_true", help="exit after printing the case"
    )
    parser.add_argument(
        "--scenario", default="mine-site", help="mine-site (default), small or a file"
    )
    parser.add_argument("--hours", type=float, help="simulate fewer hours")
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--dir", help="keep everything in this folder (default: a temp folder)"
    )
    parser.add_argument("--parallel", type=int, default=max(os.cpu_count() or 1, 1))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    scenario = with_overrides(
        load_scenario(args.scenario), hours=args.hours, seed=args.seed
    )
    with workdir(args.dir) as work:
        demo = Demo(work, scenario, quiet=args.once)
        try:
            demo.broker()
            sim = demo.simulate()
            demo.central(sim)
            demo.gateways(args.parallel)
            stats = demo.wait_ingest()
            say(f"      central stored: {json.dumps(stats.get('records'))}")
            demo.beacon()
            demo.case(sim)
            token = demo.ops()
            say(
                f"\nops page: http://127.0.0.1:{demo.http_port}/  (token: {token})\n"
                f"logs: {demo.logs}"
            )
            if args.once:
                return 0
            say("Ctrl-C to stop.")
            with contextlib.suppress(KeyboardInterrupt):
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
            return 0
        except RuntimeError as exc:
            sys.stderr.write(f"demo: error: {exc}\n")
            return 1
        finally:
            demo.stop()


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""A scripted stand-in for bluepy-helper: a Bluetooth adapter in a test.

bluepy's `btle.py` runs `helperExe [iface]` and talks to it over stdin/stdout with
bluepy-helper's line protocol (bluepy 1.3.0 `bluepy-helper.c`): commands such as
`le on`, `scan`, `pasv`, `scanend`, `conn ADDR TYPE hciN`, `svcs UUID`,
`char START END`, `rd HANDLE`, `disc`, `quit`; answers `rsp=$TYPE` followed by
`\\x1e`-separated `tag=value` fields, values typed `$sym`, `'str`, `hHEX`, `bHEX`.
This script reproduces the answers the real helper prints, byte for byte, so the
real bluepy code (Scanner, ScanEntry, Peripheral) runs unchanged on top of it.

The scenario is a JSON file named by $BLUEGATE_FAKE_HELPER:

  log            file to append events to ("<mono> <pid> <launch> <event>")
  state_dir      directory for the launch counter
  launches       list of per-launch overrides merged over the top level
  start          "ok" | "exit" (die before answering anything)
  le_on          "success" | "mgmterr:<code>:<msg>" | "nomgmt" | "silent"
  scan           "success" | "mgmterr:<code>:<msg>" | "busy" | "busy_once" | "badstate"
  scan_seq       per-call answers to `scan`/`pasv` (1st, 2nd, ...), then `scan`
  adv            [{addr, type (1 public, 2 random), rssi, flags, data hex}]
  repeat         how many times to emit the `adv` list (default 1)
  rotate         {count, data, rssi, type}: `count` reports from distinct addresses
  interval_s     pause between reports (default 0: as fast as bluepy reads)
  die_after      exit abruptly (status 3) after this many reports
  disc_after     end the discovery (`stat state=$disc`) after this many reports,
                 as the kernel does after ~10 s; emission resumes on the next `scan`
  gatt           {ADDR: {connect: "ok"|"fail"|"hang", service: bool, char: bool,
                  value: hex, delay_s: float}}
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import sys
import time

SEP = "\x1e"
SERVICE = "00004e56-73f5-4bc4-a12f-17d1ad07a667"
CHAR = "00004e56-73f5-4bc4-a12f-17d1ad07a689"


def _load() -> tuple[dict, int]:
    with open(os.environ["BLUEGATE_FAKE_HELPER"]) as fh:
        scen = json.load(fh)
    counter = os.path.join(scen["state_dir"], "launches")
    with open(counter, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        text = fh.read().strip()
        idx = int(text) if text else 0
        fh.seek(0)
        fh.truncate()
        fh.write(str(idx + 1))
    cfg = {k: v for k, v in scen.items() if k != "launches"}
    overrides = scen.get("launches", [])
    if idx < len(overrides):
        cfg.update(overrides[idx])
    return cfg, idx


CFG, LAUNCH = _load()


def log(event: str) -> None:
    path = CFG.get("log")
    if not path:
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(f"{time.monotonic():.6f} {os.getpid()} {LAUNCH} {event}\n")


def out(*fields: str) -> None:
    sys.stdout.write(SEP.join(fields) + "\n")
    sys.stdout.flush()


def mgmt(spec: str) -> None:
    if spec == "success":
        out("rsp=$mgmt", "code=$success")
    elif spec.startswith("mgmterr:"):
        _, code, msg = spec.split(":", 2)
        out("rsp=$mgmt", "code=$mgmterr", f"estat=h{int(code):X}", f"emsg='{msg}")
    elif spec == "nomgmt":
        out("rsp=$err", "code=$nomgmt")
    elif spec == "silent":
        pass
    else:
        out("rsp=$mgmt", f"code=${spec}")


def stat(state: str, dst: str = "") -> None:
    fields = ["rsp=$stat", f"state=${state}"]
    if state != "disc":
        fields.append(f"dst='{dst}")
    out(*fields, "mtu=h0", "sec='low")


def reports():
    for _ in range(int(CFG.get("repeat", 1))):
        yield from CFG.get("adv", [])
    rot = CFG.get("rotate")
    if rot:
        for i in range(int(rot["count"])):
            b = (0xC0 << 40) | (LAUNCH << 32) | i
            addr = ":".join(f"{(b >> s) & 0xFF:02X}" for s in range(40, -8, -8))
            yield {
                "addr": addr,
                "type": rot.get("type", 2),
                "rssi": rot["rssi"],
                "flags": 0,
                "data": rot["data"],
            }


class Helper:
    def __init__(self) -> None:
        self.scanning = False
        self.passive = False
        self.source = reports()
        self.sent = 0
        self.since_disc = 0
        self.scan_calls = 0
        self.conn: str | None = None

    def emit(self) -> bool:
        rep = next(self.source, None)
        if rep is None:
            return False
        addr = rep["addr"].replace(":", "").upper()
        rssi = int(rep["rssi"])
        if self.passive:
            raw_rssi, raw_flag = 256 - (rssi & 0xFF), 0
        else:
            raw_rssi = (-rssi) & 0xFFFFFFFF
            raw_flag = (-int(rep.get("flags", 0))) & 0xFFFFFFFF
        fields = [
            "rsp=$scan",
            f"addr=b{addr}",
            f"type=h{int(rep.get('type', 2)):X}",
            f"rssi=h{raw_rssi:X}",
            f"flag=h{raw_flag:X}",
        ]
        if rep.get("data"):
            fields.append(f"d=b{rep['data'].upper()}")
        out(*fields)
        self.sent += 1
        self.since_disc += 1
        if CFG.get("die_after") is not None and self.sent >= int(CFG["die_after"]):
            # Real helpers crash while scanning, not within microseconds of `scan`:
            # bluepy checks Popen.poll() before reading a line, so a helper that is
            # already gone loses the answers it printed.
            time.sleep(float(CFG.get("die_delay_s", 0.2)))
            log("die")
            os._exit(3)
        if CFG.get("disc_after") and self.since_disc >= int(CFG["disc_after"]):
            self.scanning = False
            self.since_disc = 0
            stat("disc")
        return True

    def command(self, line: str) -> None:
        argv = line.split()
        if not argv:
            return
        cmd = argv[0].lower()
        log("cmd " + " ".join(argv))
        if cmd == "quit":
            log("quit")
            sys.exit(0)
        elif cmd == "le":
            mgmt(CFG.get("le_on", "success"))
        elif cmd in ("scan", "pasv"):
            self.scan_calls += 1
            spec = CFG.get("scan", "success")
            seq = CFG.get("scan_seq", [])
            if self.scan_calls <= len(seq):
                spec = seq[self.scan_calls - 1]
            if spec == "busy_once":
                spec = "busy" if self.scan_calls == 1 else "success"
            mgmt(spec)
            if spec == "success":
                self.passive = cmd == "pasv"
                self.scanning = True
                stat("scan")
        elif cmd in ("scanend", "pasvend"):
            mgmt("success")
            if self.scanning:
                self.scanning = False
                stat("disc")
        elif cmd == "stat":
            stat("scan" if self.scanning else ("conn" if self.conn else "disc"))
        elif cmd == "conn":
            self.connect(argv[1].upper())
        elif cmd == "disc":
            if self.conn is not None:
                log(f"disconnect {self.conn}")
            self.conn = None
            stat("disc")
        elif cmd == "svcs":
            dev = self.device()
            if dev is None:
                out("rsp=$err", "code=$badstate")
            elif dev.get("service", True) and argv[1].lower() == SERVICE:
                out("rsp=$find", "hstart=h1", "hend=h3")
            else:
                out("rsp=$find")
        elif cmd == "char":
            dev = self.device()
            if dev is None:
                out("rsp=$err", "code=$badstate")
            elif dev.get("char", True):
                out("rsp=$find", "hnd=h2", "props=h2", "vhnd=h3", f"uuid='{CHAR}")
            else:
                out("rsp=$find")
        elif cmd == "rd":
            dev = self.device()
            if dev is None:
                out("rsp=$err", "code=$badstate")
            else:
                time.sleep(float(dev.get("read_delay_s", 0.0)))
                log(f"read {self.conn}")
                out("rsp=$rd", f"d=b{dev.get('value', '').upper()}")
        else:
            out("rsp=$err", "code=$badcmd")

    def device(self) -> dict | None:
        if self.conn is None:
            return None
        return CFG.get("gatt", {}).get(self.conn)

    def connect(self, addr: str) -> None:
        stat("tryconn", addr)
        dev = CFG.get("gatt", {}).get(addr)
        log(f"connect {addr}")
        behaviour = "fail" if dev is None else dev.get("connect", "ok")
        time.sleep(float((dev or {}).get("delay_s", 0.0)))
        if behaviour == "ok":
            self.conn = addr
            log(f"connected {addr}")
            stat("conn", addr)
        elif behaviour == "hang":
            log(f"hang {addr}")
        else:
            log(f"connfail {addr}")
            stat("disc")
            out("rsp=$err", "code=$connfail", "emsg='Connection refused (111)")


def main() -> None:
    print("# fake bluepy-helper (tests/fakes) launch", LAUNCH, flush=True)
    log("start " + " ".join(sys.argv[1:]))
    if CFG.get("start") == "exit":
        log("exit at start")
        sys.exit(1)
    helper = Helper()
    buf = b""
    interval = float(CFG.get("interval_s", 0.0))
    exhausted = False
    while True:
        emitting = helper.scanning and not exhausted
        timeout = interval if emitting else None
        ready, _, _ = select.select([0], [], [], timeout)
        if ready:
            chunk = os.read(0, 4096)
            if not chunk:
                log("stdin closed")
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                helper.command(line.decode())
        elif emitting and not helper.emit():
            exhausted = True


if __name__ == "__main__":
    main()

"""sd_notify and journal set-up, against a real AF_UNIX datagram socket.

The daemon-level tests (a real `bluegate-gateway run` under a test NOTIFY_SOCKET)
are in tests/test_run_daemon.py.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import systemd
from gateway.systemd import Notifier, socket_address, watchdog_period_s


@pytest.fixture
def notify_sock(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    try:
        yield sock, str(path)
    finally:
        sock.close()


def recv_all(sock: socket.socket) -> list[str]:
    out = []
    sock.settimeout(0.2)
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            return out


def test_datagram_fallback(notify_sock: tuple[socket.socket, str]) -> None:
    sock, path = notify_sock
    n = Notifier({"NOTIFY_SOCKET": path}, prefer_libsystemd=False)
    assert n.enabled
    assert n.ready("listening")
    assert n.status("12 adv/s")
    assert n.status("12 adv/s")  # unchanged: not sent again
    assert n.watchdog()
    assert n.reloading(monotonic_usec=1234)
    assert n.stopping()
    assert recv_all(sock) == [
        "READY=1\nSTATUS=listening",
        "STATUS=12 adv/s",
        "WATCHDOG=1",
        "RELOADING=1\nMONOTONIC_USEC=1234",
        "STOPPING=1",
    ]


def test_libsystemd_sender(
    notify_sock: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("systemd.daemon")
    sock, path = notify_sock
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    n = Notifier()
    assert n.ready()
    n.reloading()
    assert recv_all(sock)[0] == "READY=1"


def test_abstract_socket() -> None:
    name = f"bluegate-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        n = Notifier({"NOTIFY_SOCKET": "@" + name}, prefer_libsystemd=False)
        assert n.watchdog()
        sock.settimeout(2)
        assert sock.recv(100) == b"WATCHDOG=1"
    assert socket_address("@x") == b"\0x"
    assert socket_address("/run/x") == "/run/x"


def test_noop_outside_systemd() -> None:
    n = Notifier({})
    assert not n.enabled
    assert not n.ready()
    assert not n.watchdog()
    assert n.ping_interval_s is None


def test_missing_socket_is_not_fatal(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}, prefer_libsystemd=False)
    assert not n.ready()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "x"}, None),
        ({"WATCHDOG_USEC": "90000000"}, 90.0),
        ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "77"}, 4.0),
        ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "78"}, None),  # another process
    ],
)
def test_watchdog_period(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_period_s(env, 77) == expected


def test_ping_interval_is_half_the_period() -> None:
    env = {"WATCHDOG_USEC": "6000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(env).ping_interval_s == 3.0


def test_logging_stderr_outside_systemd(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        assert (
            systemd.setup_logging(
                "bluegate-gateway", {"gateway": "g"}, "info", environ={}
            )
            == "stderr"
        )
        logging.getLogger("x").info("hello %s", "there")
        assert "bluegate-gateway INFO x: hello there" in capsys.readouterr().err
        systemd.set_level("warning")
        assert root.level == logging.WARNING
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])


def test_journal_stream_must_match_stderr() -> None:
    # JOURNAL_STREAM of a parent whose stderr was redirected is not ours.
    assert not systemd.under_systemd({"JOURNAL_STREAM": "1:2"})
    assert not systemd.under_systemd({})

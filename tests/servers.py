"""Real servers for integration tests, started on loopback from Debian's packages.

Nothing here is a mock: Mosquitto and PostgreSQL are the real daemons, each with
its own configuration and data directory under the test's temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout_s: float = 10.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with status {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s}s")


@dataclass
class Mosquitto:
    """A real Mosquitto broker on 127.0.0.1 with a config written by the test."""

    workdir: Path
    port: int = field(default_factory=free_port)
    extra_config: str = ""
    persistence: bool = True
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = []
        if os.geteuid() == 0:
            # Mosquitto drops to user `mosquitto` when started as root; keep root so
            # it can read the test's files (the test machine has no other users).
            lines.append("user root")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        lines += [
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 100000",
        ]
        if "listener" not in self.extra_config:
            lines += [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> Mosquitto:
        self.write_config()
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port, proc=self.proc)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def _pg_bin(name: str) -> str:
    for version in ("17", "16", "15", "14", "13"):
        candidate = f"/usr/lib/postgresql/{version}/bin/{name}"
        if os.path.exists(candidate):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"PostgreSQL's {name} not found; install Debian's postgresql"
        )
    return found


@dataclass
class Postgres:
    """A real PostgreSQL server on 127.0.0.1, run as an unprivileged user when root."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    user: str = "postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _as_user(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        entry = pwd.getpwnam("postgres")  # created by Debian's postgresql package
        return entry.pw_uid, entry.pw_gid

    def _run(self, argv: list[str]) -> None:
        ids = self._as_user()

        def demote() -> None:
            if ids is not None:
                os.setgid(ids[1])
                os.setuid(ids[0])

        subprocess.run(argv, check=True, preexec_fn=demote, capture_output=True)  # noqa: PLW1509

    def start(self) -> Postgres:
        ids = self._as_user()
        if ids is not None:
            # pytest's temporary folders are private to root; the server's user needs
            # its own folder it can reach, so make one directly under /tmp.
            self.workdir = Path(tempfile.mkdtemp(prefix="bluegate-pg-"))
            os.chown(self.workdir, *ids)
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "pgdata"
        if ids is None:
            self.user = pwd.getpwuid(os.getuid()).pw_name
        self._run(
            [
                _pg_bin("initdb"),
                "-D",
                str(data),
                "-U",
                self.user,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )

        def demote() -> None:
            if ids is not None:
                os.setgid(ids[1])
                os.setuid(ids[0])

        self.proc = subprocess.Popen(  # noqa: PLW1509
            [
                _pg_bin("postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.workdir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=demote,
        )
        wait_for_port(self.port, timeout_s=30, proc=self.proc)
        # The port opens slightly before the server accepts logins.
        time.sleep(0.3)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if str(self.workdir).startswith(tempfile.gettempdir() + "/bluegate-pg-"):
            shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def running(server: Mosquitto | Postgres) -> Iterator[Mosquitto | Postgres]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- The production broker configuration (deploy/mosquitto/), for TLS tests ---------

DEPLOY_MOSQUITTO = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"


def deploy_mosquitto_config(etc_dir: Path, port: int) -> str:
    """deploy/mosquitto/bluegate.conf with its paths moved to `etc_dir` and `port`.

    `etc_dir` must hold ca.pem, server.pem and server-key.pem (bluegate-central
    ca); the deploy ACL is copied there. Pass the result as Mosquitto's
    `extra_config` (with persistence=True the helper's own lines stay first).
    """
    etc_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEPLOY_MOSQUITTO / "acl", etc_dir / "acl")
    text = (DEPLOY_MOSQUITTO / "bluegate.conf").read_text()
    text = text.replace("/etc/mosquitto/bluegate/", f"{etc_dir}/")
    return text.replace("listener 8883", f"listener {port} 127.0.0.1")

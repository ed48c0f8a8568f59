"""Shell: the beacon's Bluezone base key on disk (design.md key_file format).

The key file is `{"base_key": "<64 hex>", "created": "YYYY-MM-DD"}`, mode 0600,
written atomically (temporary file in the same folder, fsync, rename, fsync of the
folder) so a power cut leaves either the old key or the new one, never half a key.

Rekeying after a disclosure: a daily key reveals every LATER day of its base key
(protocols.md 1.5, a hash chain), so once a daily key has been handed to the health
authority the beacon must move to a fresh base key. The retired key is not deleted:
ops may later need to export an earlier window, so it is archived beside the key
file (`<key_file>.archive/<retired>.json`, 0600) with the end of its validity.

The key itself is never logged or printed; `fingerprint` names a key in summaries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beacon import bluezone
from gateway.errors import BlueGateError, ConfigError

_LOGGER = logging.getLogger(__name__)

KEY_LEN = 32
FILE_MODE = 0o600
DIR_MODE = 0o700


class KeyFileError(ConfigError):
    """The key file is missing or malformed (a configuration problem: exit 78)."""


class KeyExistsError(BlueGateError):
    """Enrolment would overwrite an existing key."""


@dataclass(frozen=True, slots=True)
class BaseKey:
    """One Bluezone base key with the interval in which the beacon used it.

    Valid from the UTC midnight of `created` until `retired` (Unix seconds, None
    while current)."""

    base_key: bytes = field(repr=False)
    created: dt.date
    retired: float | None = None
    reason: str | None = None

    @property
    def valid_from(self) -> float:
        return float(bluezone.midnight_of(self.created))

    @property
    def valid_to(self) -> float | None:
        return self.retired

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.base_key)

    def daily_key(self, day: dt.date) -> bytes:
        """DK of `day`: SHA-256 applied (day - created) times to the base key."""
        return bluezone.daily_key_from_base(self.base_key, (day - self.created).days)

    def covers(self, t: float) -> bool:
        return t >= self.valid_from and (self.retired is None or t < self.retired)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "base_key": self.base_key.hex(),
            "created": self.created.isoformat(),
        }
        if self.retired is not None:
            out["retired"] = iso_utc(self.retired)
        if self.reason:
            out["reason"] = self.reason
        return out


def fingerprint(base_key: bytes) -> str:
    """A short public name for a key (a one-way hash; reveals no ID)."""
    return hashlib.sha256(b"bluegate-beacon-key\0" + base_key).hexdigest()[:16]


def iso_utc(t: float) -> str:
    return (
        dt.datetime.fromtimestamp(t, tz=dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def parse_iso_utc(text: str) -> float:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def generate(
    created: dt.date, random_bytes: Callable[[int], bytes] = os.urandom
) -> BaseKey:
    """A fresh base key (32 random bytes, as Bluezone's own SecRandomCopyBytes(32))."""
    key = random_bytes(KEY_LEN)
    if len(key) != KEY_LEN:
        raise ValueError("random source returned the wrong length")
    return BaseKey(key, created)


def parse_key(text: str, source: str) -> BaseKey:
    """A key file's JSON text -> BaseKey; errors name the file and the field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyFileError(source, exc.lineno, "(json)", exc.msg) from None
    if not isinstance(data, dict):
        raise KeyFileError(source, None, "(root)", "must be a JSON object")
    hex_key = data.get("base_key")
    if not isinstance(hex_key, str):
        raise KeyFileError(source, None, "base_key", "is required (64 hex digits)")
    try:
        raw = bytes.fromhex(hex_key)
    except ValueError:
        raise KeyFileError(source, None, "base_key", "is not hex") from None
    if len(raw) != KEY_LEN:
        raise KeyFileError(source, None, "base_key", "must be 32 bytes (64 hex digits)")
    created_text = data.get("created")
    try:
        created = dt.date.fromisoformat(str(created_text))
    except ValueError:
        raise KeyFileError(
            source, None, "created", "must be a date YYYY-MM-DD"
        ) from None
    retired: float | None = None
    if data.get("retired") is not None:
        try:
            retired = parse_iso_utc(str(data["retired"]))
        except ValueError:
            raise KeyFileError(
                source,
                None,
                "retired",
                "must be an ISO time such as 2026-11-23T14:15:00Z",
            ) from None
    reason = data.get("reason")
    return BaseKey(raw, created, retired, str(reason) if reason else None)


def load_key(path: str | os.PathLike[str]) -> BaseKey:
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise KeyFileError(
            path, None, "(file)", "no key file; run `bluegate-beacon enroll` first"
        ) from None
    except OSError as exc:
        raise KeyFileError(
            path, None, "(file)", f"cannot read: {exc.strerror}"
        ) from None
    return parse_key(text, path)


def write_atomic(path: str | os.PathLike[str], text: str, *, overwrite: bool) -> None:
    """Write `text` to `path` with mode 0600, atomically and durably."""
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        _keep_owner(str(folder), folder.parent)
    if not overwrite and target.exists():
        raise KeyExistsError(f"{target} exists; refusing to overwrite a key")
    # mkstemp creates the file 0600 from the start: the key is never world-readable,
    # not even for the instant before a chmod.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        _keep_owner(tmp, target if target.exists() else folder)
        if overwrite:
            os.replace(tmp, target)
        else:
            # link() fails if the target appeared meanwhile: no silent overwrite.
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise KeyExistsError(
                    f"{target} exists; refusing to overwrite a key"
                ) from None
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _keep_owner(path: str, like: Path) -> None:
    """Run as root (`sudo bluegate-beacon enroll`), give the file to the owner of the
    key it replaces (or of its folder): the daemon runs as `bluegate` and must still
    read its key after an ops rekey."""
    if os.geteuid() != 0:
        return
    st = like.stat()
    os.chown(path, st.st_uid, st.st_gid)


def _dump(key: BaseKey) -> str:
    return json.dumps(key.to_json(), indent=2) + "\n"


def archive_dir(key_file: str | os.PathLike[str]) -> Path:
    return Path(f"{os.fspath(key_file)}.archive")


def enroll(
    key_file: str | os.PathLike[str],
    today: dt.date,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> BaseKey:
    """Create the beacon's first base key; refuses to overwrite an existing one."""
    key = generate(today, random_bytes)
    write_atomic(key_file, _dump(key), overwrite=False)
    _LOGGER.info("beacon key created (fingerprint %s)", key.fingerprint)
    return key


def rekey(
    key_file: str | os.PathLike[str],
    now: float,
    slots_per_day: int,
    reason: str | None = None,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> tuple[BaseKey, BaseKey]:
    """Retire the current key and move to a fresh one; return (archived, new).

    The running beacon sees the new file at its next tick (within its watchdog ping
    interval, at the latest the next slot boundary) and switches at once; the old
    key's `retired` time is the end of the current slot, an upper bound of that
    switch, so an export of the rekey's slot carries both keys.
    The archive is written before the key file is replaced; a crash in between
    leaves the old key current and an archive copy that `load_history` ignores.
    """
    old = load_key(key_file)
    slot_s = bluezone.slot_length_s(slots_per_day)
    retired = bluezone.slot_start(now, slots_per_day) + slot_s
    archived = BaseKey(old.base_key, old.created, retired, reason)
    stamp = dt.datetime.fromtimestamp(retired, tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = archive_dir(key_file)
    target = folder / f"{stamp}-{old.fingerprint}.json"
    write_atomic(target, _dump(archived), overwrite=True)
    new = generate(bluezone.date_of(now), random_bytes)
    if new.base_key == old.base_key:  # pragma: no cover - 2^-256
        raise BlueGateError("random source repeated a key")
    write_atomic(key_file, _dump(new), overwrite=True)
    _LOGGER.warning(
        "beacon rekeyed: key %s retired at %s, new key %s",
        old.fingerprint,
        iso_utc(retired),
        new.fingerprint,
    )
    return archived, new


def load_history(key_file: str | os.PathLike[str]) -> list[BaseKey]:
    """The current key and every archived one, oldest first (for exports)."""
    current = load_key(key_file)
    keys: dict[bytes, BaseKey] = {}
    folder = archive_dir(key_file)
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            old = load_key(path)
            if old.retired is None:
                raise KeyFileError(
                    str(path), None, "retired", "an archived key needs it"
                )
            if old.base_key == current.base_key:
                continue  # a rekey interrupted before the new key was written
            seen = keys.get(old.base_key)
            if seen is None or (seen.retired or 0) < old.retired:
                keys[old.base_key] = old
    history = sorted(keys.values(), key=lambda k: (k.valid_from, k.retired or 0.0))
    history.append(current)
    return history


class KeyWatcher:
    """The current key, re-read when the key file changes (after `enroll --rekey`).

    The beacon daemon asks at every tick (at least once a minute); a stat() is free."""

    def __init__(self, key_file: str) -> None:
        self.key_file = key_file
        self._stamp: tuple[int, int, int] | None = None
        self._key: BaseKey | None = None

    def current(self) -> BaseKey:
        try:
            st = os.stat(self.key_file)
        except OSError as exc:
            raise KeyFileError(
                self.key_file, None, "(file)", f"cannot read: {exc.strerror}"
            ) from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._key is None or stamp != self._stamp:
            key = load_key(self.key_file)
            if self._key is not None and key.base_key != self._key.base_key:
                _LOGGER.warning("beacon key changed on disk: now %s", key.fingerprint)
            self._key = key
            self._stamp = stamp
        return self._key

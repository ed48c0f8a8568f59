"""Bearer tokens for the HTTP API: roles, hashing, lookup (design.md: authenticated API).

A token is ``bgt_`` + 32 random bytes (urlsafe base64), made by `bluegate-central token
create` or by an admin through the API, and shown once. The store keeps only its
SHA-256 (`api_tokens.token_hash`): the token has 256 bits of entropy, so a plain
hash is as good as a slow one and costs nothing per request. The lookup goes by the
hash through the unique index; the stored hash is then compared with
`hmac.compare_digest`, so no comparison we make leaks timing about the stored value.

Roles: ``ops`` may run every query and work cases and visitors; ``admin`` may also
read the audit log and manage tokens and reference data.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from central.store import SqlStore

PREFIX: Final = "bgt_"
ROLES: Final = ("ops", "admin")
# Role -> the roles it includes.
_INCLUDES: Final = {"ops": frozenset({"ops"}), "admin": frozenset({"ops", "admin"})}
# What a token can look like: bounded, printable, no spaces (RFC 6750 b64token).
_TOKEN_SHAPE: Final = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, role and label (never the token)."""

    token_id: int
    role: str
    label: str | None

    def allows(self, role: str) -> bool:
        return role in _INCLUDES.get(self.role, frozenset())

    @property
    def actor(self) -> str:
        """How the audit log names the caller."""
        return f"token:{self.token_id}" + (f" ({self.label})" if self.label else "")


def hash_token(token: str) -> str:
    """The stored form: SHA-256 hex (same as `bluegate-central token create`)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not _TOKEN_SHAPE.match(value):
        return None
    return value


def authenticate(store: SqlStore, token: str) -> Principal | None:
    """The active token's principal, or None (unknown, revoked or malformed)."""
    digest = hash_token(token)
    found = store.token_by_hash(digest)
    if found is None:
        return None
    rows = store._query(
        "SELECT token_hash FROM api_tokens WHERE id = ?", (int(found["id"]),)
    )
    if not rows or not hmac.compare_digest(str(rows[0][0]), digest):
        return None
    if found["role"] not in ROLES:
        return None
    return Principal(int(found["id"]), str(found["role"]), found["label"])


def create_token(
    store: SqlStore, role: str, label: str | None, now: float
) -> tuple[int, str]:
    """A new token of `role`: (id, token). The token is returned once, never stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = new_token()
    token_id = store.add_token(hash_token(token), role, label, now)
    return token_id, token

"""PURE: the pieces every decoder shares (immutable results, signed bytes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NoReturn

from gateway.adstruct import ParsedAd
from gateway.models import Decoded


class FrozenFields(dict[str, Any]):
    """A dict that refuses changes: decoded results are cached and shared.

    `decode_ad` hands the same Decoded object to every caller that sees the same
    payload; one caller mutating `fields` would corrupt every later sighting.
    Copy with `dict(decoded.fields)` to derive a new one.
    """

    __slots__ = ()

    def _readonly(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("decoded fields are shared and read-only; copy them first")

    __setitem__ = _readonly
    __delitem__ = _readonly
    clear = _readonly
    pop = _readonly
    popitem = _readonly
    setdefault = _readonly
    update = _readonly
    __ior__ = _readonly

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenFields, (dict(self),))


def decoded(
    fmt: str, key: str | None, fields: dict[str, Any], *, needs_gatt: bool = False
) -> Decoded:
    return Decoded(
        format=fmt, key=key, fields=FrozenFields(fields), needs_gatt=needs_gatt
    )


def int8(byte: int) -> int:
    return byte - 256 if byte > 127 else byte


# Returned (by identity) by a decoder whose format's marker is present but whose
# bytes break that format's layout: counted as malformed, never as a sighting.
MALFORMED: Final = Decoded(format="malformed", key=None, fields=FrozenFields())


Decoder = Callable[[ParsedAd], Decoded | None]

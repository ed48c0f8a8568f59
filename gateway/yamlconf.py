"""Pure: YAML text -> frozen dataclasses, with errors that name file, line and key.

Shared by the gateway, beacon and central configurations. Unknown keys are errors
(a typo must not silently fall back to a default, the Theengs failure mode); every
error carries the line of the offending node so a technician can fix it in one go.

Schema is the dataclass itself: field types drive conversion, `field(metadata=...)`
adds checks:

- ``min`` / ``max``: numeric bounds (inclusive)
- ``path``: the string is a filesystem path, resolved against the config file's folder
- ``secret_path``: a path to a secret; inline secrets are refused
- ``help``: one line shown by ``--check-config``

A dataclass may define ``check(self) -> list[tuple[str, str]]`` returning
(key, message) pairs for rules across fields.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from gateway.errors import ConfigError

T = TypeVar("T")

_MISSING = dataclasses.MISSING


class _Located:
    """A YAML node with where it came from."""

    __slots__ = ("file", "node")

    def __init__(self, file: str, node: yaml.Node) -> None:
        self.file = file
        self.node = node

    @property
    def line(self) -> int:
        return int(self.node.start_mark.line) + 1


def load_file(path: str, schema: type[T]) -> T:
    """Read and validate a YAML config file; raise ConfigError on the first problem."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(
            path, None, "(file)", f"cannot read: {exc.strerror}"
        ) from None
    base_dir = os.path.dirname(os.path.abspath(path))
    return load_text(text, schema, source=path, base_dir=base_dir)


def load_text(text: str, schema: type[T], *, source: str, base_dir: str = ".") -> T:
    """Validate YAML text (a file's or a retained MQTT message's) into `schema`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise ConfigError(source, line, "(syntax)", str(exc.problem)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, None, "(syntax)", str(exc)) from None
    if root is None:
        raise ConfigError(source, 1, "(file)", "is empty")
    builder = _Builder(source, base_dir)
    return typing.cast(T, builder.build(schema, root, ""))


def load_mapping(data: dict[str, Any], schema: type[T], *, source: str) -> T:
    """Validate an already-parsed mapping (e.g. JSON) by round-tripping through YAML."""
    return load_text(yaml.safe_dump(data), schema, source=source)


def to_plain(value: Any) -> Any:
    """A dataclass config as plain dicts and lists (for --check-config)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def redacted(value: Any) -> Any:
    """Like to_plain, but never prints a secret's content (only paths are kept)."""
    return to_plain(value)


class _Builder:
    def __init__(self, file: str, base_dir: str) -> None:
        self.file = file
        self.base_dir = base_dir
        self.constructor = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, key: str, message: str) -> ConfigError:
        return ConfigError(
            self.file, int(node.start_mark.line) + 1, key or "(root)", message
        )

    def scalar(self, node: yaml.Node) -> Any:
        return self.constructor.construct_object(node, deep=True)

    def build(self, tp: Any, node: yaml.Node, key: str, meta: Any = None) -> Any:
        meta = meta or {}
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if (
                isinstance(node, yaml.ScalarNode)
                and self.scalar(node) is None
                and type(None) in get_args(tp)
            ):
                return None
            if len(args) == 1:
                return self.build(args[0], node, key, meta)
            errors: list[ConfigError] = []
            for arg in args:
                try:
                    return self.build(arg, node, key, meta)
                except ConfigError as exc:
                    errors.append(exc)
            raise errors[-1]
        if dataclasses.is_dataclass(tp):
            return self.build_dataclass(typing.cast(type, tp), node, key)
        if origin is Literal:
            value = self.scalar_of(node, key)
            choices = get_args(tp)
            if value not in choices:
                shown = ", ".join(repr(c) for c in choices)
                raise self.fail(node, key, f"must be one of {shown}, not {value!r}")
            return value
        if origin in (list, tuple):
            if not isinstance(node, yaml.SequenceNode):
                raise self.fail(node, key, "must be a list")
            (item_tp, *_rest) = get_args(tp) or (Any,)
            items = [
                self.build(item_tp, child, f"{key}[{i}]", meta)
                for i, child in enumerate(node.value)
            ]
            return tuple(items) if origin is tuple else items
        if origin is dict:
            if not isinstance(node, yaml.MappingNode):
                raise self.fail(node, key, "must be a mapping")
            _key_tp, value_tp = get_args(tp)
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                name = str(self.scalar(knode))
                out[name] = self.build(
                    value_tp, vnode, f"{key}.{name}" if key else name, meta
                )
            return out
        value = self.scalar_of(node, key)
        return self.convert(tp, value, node, key, meta)

    def scalar_of(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, key, "must be a single value, not a list or mapping")
        return self.scalar(node)

    def convert(self, tp: Any, value: Any, node: yaml.Node, key: str, meta: Any) -> Any:
        if tp is Any:
            return value
        if tp is bool:
            if not isinstance(value, bool):
                raise self.fail(node, key, f"must be true or false, not {value!r}")
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(node, key, f"must be a whole number, not {value!r}")
            self.check_bounds(value, node, key, meta)
            return value
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(node, key, f"must be a number, not {value!r}")
            self.check_bounds(float(value), node, key, meta)
            return float(value)
        if tp is str:
            if (
                isinstance(value, bool)
                or value is None
                or isinstance(value, list | dict)
            ):
                raise self.fail(node, key, f"must be text, not {value!r}")
            text = str(value)
            if meta.get("path") or meta.get("secret_path"):
                if not text:
                    raise self.fail(node, key, "must be a path, not empty")
                if meta.get("secret_path") and "-----BEGIN" in text:
                    raise self.fail(
                        node, key, "secrets are referenced by path, never inlined"
                    )
                text = os.path.normpath(
                    os.path.join(self.base_dir, os.path.expanduser(text))
                )
            return text
        raise self.fail(node, key, f"unsupported type {tp!r} in schema")

    def check_bounds(self, value: float, node: yaml.Node, key: str, meta: Any) -> None:
        low = meta.get("min")
        high = meta.get("max")
        if low is not None and value < low:
            raise self.fail(node, key, f"must be at least {low}, not {value}")
        if high is not None and value > high:
            raise self.fail(node, key, f"must be at most {high}, not {value}")

    def build_dataclass(self, cls: type, node: yaml.Node, key: str) -> Any:
        if isinstance(node, yaml.ScalarNode) and self.scalar(node) is None:
            node = yaml.MappingNode(
                "tag:yaml.org,2002:map", [], node.start_mark, node.end_mark
            )
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, "must be a mapping of keys to values")
        hints = get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        seen: dict[str, yaml.Node] = {}
        kwargs: dict[str, Any] = {}
        for knode, vnode in node.value:
            name = str(self.scalar(knode))
            full = f"{key}.{name}" if key else name
            if name in seen:
                raise self.fail(knode, full, "is given twice")
            seen[name] = vnode
            fdef = fields.get(name)
            if fdef is None:
                known = ", ".join(sorted(fields))
                raise self.fail(knode, full, f"unknown key (known keys: {known})")
            kwargs[name] = self.build(hints[name], vnode, full, dict(fdef.metadata))
        for name, fdef in fields.items():
            if (
                name not in kwargs
                and fdef.default is _MISSING
                and fdef.default_factory is _MISSING
            ):
                raise self.fail(node, f"{key}.{name}" if key else name, "is required")
        try:
            obj = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise self.fail(node, key, str(exc)) from None
        check = getattr(obj, "check", None)
        if callable(check):
            for bad_key, message in check():
                where = seen.get(bad_key.split(".")[0], node)
                raise self.fail(where, f"{key}.{bad_key}" if key else bad_key, message)
        return obj

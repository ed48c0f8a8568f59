"""Reference data: sites, zones, gateways with their zone over time, people, and tag
assignments (central-reference.md 4.1), imported from YAML or CSV.

People are kept apart from device keys: a key belongs to a person only through a tag
assignment with a validity interval (tags get reissued). A gateway's zone is a list
of assignments over time too (a bus gateway moves from one bus to another).

YAML (one file, any subset of sections)::

    sites:    [{site: mine-a, name: Mine A, tz: Asia/Ho_Chi_Minh}]
    zones:    [{zone: bus-07, site: mine-a, kind: bus, enclosed: true, capacity: 45}]
    gateways: [{gateway: gw-bus-07, site: mine-a,
                zones: [{zone: bus-07, from: 2026-01-01}, {zone: bus-09, from: 2026-02-01T06:00Z}]}]
    people:   [{person: W0001, kind: worker, name: Nguyen Van A, employer: ACME, phone: "..."},
               {person: V0001, kind: visitor, name: ..., host: W0001}]
    tags:     [{key: "ibeacon:...:1:2", person: W0001, from: 2026-01-01, to: 2026-03-01}]

CSV: one table per file, named by ``--table`` or the file name (sites.csv, zones.csv,
gateways.csv with one row per zone assignment: gateway,site,zone,from,to,notes;
people.csv, tags.csv), header row first. Errors name file, line and field.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from central.store import SqlStore
from gateway.errors import InputError

PERSON_KINDS = ("worker", "visitor", "contractor")
TABLES = ("sites", "zones", "gateways", "people", "tags")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_KIND = re.compile(r"^[a-z][a-z_]{0,31}$")


@dataclass(frozen=True, slots=True)
class Item:
    table: str
    fields: dict[str, str | None]
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class Op:
    """One validated change: `method` of the store with `args`."""

    method: str
    args: tuple[Any, ...]


def _fail(item: Item, name: str, message: str) -> InputError:
    return InputError(f"{item.file}:{item.line}: {item.table}.{name}: {message}")


def _get(item: Item, name: str, *, required: bool = False) -> str | None:
    value = item.fields.get(name)
    if value is not None:
        value = value.strip()
    if not value:
        if required:
            raise _fail(item, name, "is required")
        return None
    return value


def _name(item: Item, name: str, *, required: bool = True) -> str | None:
    value = _get(item, name, required=required)
    if value is not None and not _NAME.match(value):
        raise _fail(item, name, f"not a valid identifier: {value!r}")
    return value


def parse_time(value: str) -> float:
    text = value.strip().replace("Z", "+00:00")
    stamp = dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def _time(item: Item, name: str, *, required: bool) -> float | None:
    value = _get(item, name, required=required)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise _fail(item, name, f"not an ISO date or time: {value!r}") from None


def _bool(item: Item, name: str) -> bool | None:
    value = _get(item, name)
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise _fail(item, name, f"must be true or false, not {value!r}")


def _int(item: Item, name: str) -> int | None:
    value = _get(item, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise _fail(item, name, f"must be a whole number, not {value!r}") from None
    if number < 0:
        raise _fail(item, name, "must not be negative")
    return number


KNOWN_FIELDS = {
    "sites": {"site", "name", "tz"},
    "zones": {"zone", "site", "name", "kind", "enclosed", "capacity"},
    "gateways": {"gateway", "site", "zone", "from", "to", "notes"},
    "people": {"person", "kind", "name", "employer", "phone", "host"},
    "tags": {"key", "person", "from", "to"},
}


def operations(item: Item) -> list[Op]:
    """Validate one item into store operations (pure)."""
    unknown = set(item.fields) - KNOWN_FIELDS[item.table]
    if unknown:
        raise _fail(
            item,
            sorted(unknown)[0],
            f"unknown field (known: {', '.join(sorted(KNOWN_FIELDS[item.table]))})",
        )
    if item.table == "sites":
        return [
            Op(
                "upsert_site",
                (_name(item, "site"), _get(item, "name"), _get(item, "tz")),
            )
        ]
    if item.table == "zones":
        kind = _get(item, "kind", required=True) or ""
        if not _KIND.match(kind):
            raise _fail(item, "kind", f"not a zone kind: {kind!r}")
        enclosed = _bool(item, "enclosed")
        return [
            Op(
                "upsert_zone",
                (
                    _name(item, "zone"),
                    _name(item, "site", required=False),
                    _get(item, "name"),
                    kind,
                    kind != "yard" if enclosed is None else enclosed,
                    _int(item, "capacity"),
                ),
            )
        ]
    if item.table == "gateways":
        ops = [
            Op(
                "upsert_gateway",
                (
                    _name(item, "gateway"),
                    _name(item, "site", required=False),
                    _get(item, "notes"),
                ),
            )
        ]
        zone = _name(item, "zone", required=False)
        if zone is not None:
            start = _time(item, "from", required=True)
            end = _time(item, "to", required=False)
            if end is not None and start is not None and end <= start:
                raise _fail(item, "to", "must be after from")
            ops.append(
                Op("set_gateway_zone", (_name(item, "gateway"), zone, start, end))
            )
        return ops
    if item.table == "people":
        person_kind = _get(item, "kind", required=True)
        if person_kind not in PERSON_KINDS:
            raise _fail(
                item,
                "kind",
                f"must be one of {', '.join(PERSON_KINDS)}, not {person_kind!r}",
            )
        return [
            Op(
                "upsert_person",
                (
                    _name(item, "person"),
                    person_kind,
                    _get(item, "name"),
                    _get(item, "employer"),
                    _get(item, "phone"),
                    _name(item, "host", required=False),
                ),
            )
        ]
    # tags
    key = _get(item, "key", required=True) or ""
    if ":" not in key or len(key) > 256 or key != key.lower():
        raise _fail(
            item, "key", f"not a canonical device key (format:lower-case id): {key!r}"
        )
    start = _time(item, "from", required=True)
    end = _time(item, "to", required=False)
    if end is not None and start is not None and end <= start:
        raise _fail(item, "to", "must be after from")
    return [Op("assign_tag", (key, _name(item, "person"), start, end))]


def _scalar_text(node: yaml.Node) -> str | None:
    if not isinstance(node, yaml.ScalarNode):
        return None
    if node.tag == "tag:yaml.org,2002:null" or node.value in (
        "",
        "~",
        "null",
        "Null",
        "NULL",
    ):
        return None if node.style is None else node.value
    return str(node.value)


def read_yaml(path: str, text: str) -> Iterator[Item]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise InputError(f"{path}:{line}: (syntax): {exc.problem}") from None
    if root is None:
        return
    if not isinstance(root, yaml.MappingNode):
        raise InputError(
            f"{path}:1: (root): must be a mapping of sections ({', '.join(TABLES)})"
        )
    for knode, vnode in root.value:
        table = str(knode.value)
        if table not in TABLES:
            raise InputError(
                f"{path}:{knode.start_mark.line + 1}: {table}: unknown section (known: {', '.join(TABLES)})"
            )
        if not isinstance(vnode, yaml.SequenceNode):
            raise InputError(
                f"{path}:{vnode.start_mark.line + 1}: {table}: must be a list"
            )
        for entry in vnode.value:
            line = entry.start_mark.line + 1
            if not isinstance(entry, yaml.MappingNode):
                raise InputError(
                    f"{path}:{line}: {table}: each entry must be a mapping"
                )
            fields: dict[str, str | None] = {}
            nested: list[tuple[int, dict[str, str | None]]] = []
            for fk, fv in entry.value:
                name = str(fk.value)
                if table == "gateways" and name == "zones":
                    if not isinstance(fv, yaml.SequenceNode):
                        raise InputError(
                            f"{path}:{fv.start_mark.line + 1}: gateways.zones: must be a list"
                        )
                    for z in fv.value:
                        if not isinstance(z, yaml.MappingNode):
                            raise InputError(
                                f"{path}:{z.start_mark.line + 1}: gateways.zones: each entry must be a mapping"
                            )
                        nested.append(
                            (
                                z.start_mark.line + 1,
                                {str(a.value): _scalar_text(b) for a, b in z.value},
                            )
                        )
                    continue
                if not isinstance(fv, yaml.ScalarNode):
                    raise InputError(
                        f"{path}:{fv.start_mark.line + 1}: {table}.{name}: must be a single value"
                    )
                fields[name] = _scalar_text(fv)
            if nested:
                for zline, zfields in nested:
                    yield Item(table, {**fields, **zfields}, path, zline)
            else:
                yield Item(table, fields, path, line)


def read_csv(path: str, text: str, table: str) -> Iterator[Item]:
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(
                f"{path}:{number}: {table}: has {len(row)} fields, the header {len(header)}"
            )
        yield Item(table, dict(zip(header, row, strict=True)), path, number)


def read_file(path: str, table: str | None = None) -> list[Item]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    if path.endswith((".yaml", ".yml")):
        return list(read_yaml(path, text))
    if path.endswith(".csv"):
        name = table or os.path.splitext(os.path.basename(path))[0]
        if name not in TABLES:
            raise InputError(
                f"{path}: cannot tell the table from the file name; give --table ({', '.join(TABLES)})"
            )
        return list(read_csv(path, text, name))
    raise InputError(f"{path}: unknown format (use .yaml, .yml or .csv)")


def check_overlaps(
    store: SqlStore, planned: list[tuple[Item, Op]], method: str, table: str, owner: str
) -> None:
    """A tag belongs to one person at a time, a gateway to one zone at a time: refuse an
    import whose intervals overlap each other or what is stored (an exclusion
    constraint, checked here so both engines behave the same)."""
    new: dict[str, list[tuple[float, float | None, Item | None]]] = {}
    replaced: set[tuple[str, float]] = set()
    for item, op in planned:
        if op.method == method:
            name, _value, start, end = op.args
            new.setdefault(name, []).append((start, end, item))
            replaced.add((name, start))
    if not new:
        return
    for row in store.list_table(table):
        name = row["key" if table == "tag_assignments" else "gateway"]
        if name in new and (name, row["valid_from"]) not in replaced:
            new[name].append((row["valid_from"], row["valid_to"], None))
    for name, spans in new.items():
        spans.sort(key=lambda s: s[0])
        for (a0, a1, a_item), (b0, _b1, b_item) in itertools.pairwise(spans):
            if a1 is None or a1 > b0:
                culprit = b_item or a_item
                if culprit is None:  # stored rows never overlap each other
                    continue
                raise _fail(
                    culprit,
                    "from",
                    f"{owner} {name!r} would have two assignments at once "
                    f"(from {a0:.0f} and from {b0:.0f}); end the first with 'to'",
                )


def import_items(store: SqlStore, items: list[Item]) -> dict[str, int]:
    """Validate everything first, then apply in one transaction (all or nothing)."""
    planned = [(item, op) for item in items for op in operations(item)]
    check_overlaps(store, planned, "assign_tag", "tag_assignments", "tag")
    check_overlaps(store, planned, "set_gateway_zone", "gateway_zones", "gateway")
    counts: dict[str, int] = {}
    for item in items:
        counts[item.table] = counts.get(item.table, 0) + 1
    with store.transaction():
        for _item, op in planned:
            method: Callable[..., None] = getattr(store, op.method)
            method(*op.args)
    return counts

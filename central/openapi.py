"""The OpenAPI 3.0 document of the HTTP API, served at /api/v1/openapi.json.

Generated from `central.api.ROUTES`: the same parameter and body declarations the
server validates with, so the document is accurate by construction (and a test
checks every route appears with every status it can answer).
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Final

from central import api
from gateway import __version__ as VERSION

ERROR: Final = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
DESCRIPTIONS: Final = {
    "200": "OK",
    "201": "created",
    "400": "bad input (the error names the parameter)",
    "401": "no token, or the token is unknown or revoked",
    "403": "the token's role may not do this",
    "404": "no such case, contact, location, visitor or token",
    "409": "conflict (closed case, tag in use, a token revoking itself)",
    "413": "body too large",
    "415": "the body must be application/json",
    "503": "storage unavailable",
}
ANSWERS: Final = {
    "contacts": "the contacts answer (design.md): case, exposures, contacts",
}


def _error_response(code: str) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[code],
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
        },
    }


def _operation(route: api.Route) -> dict[str, Any]:
    ok = (
        "201"
        if route.method == "POST"
        and route.template.endswith(("/cases", "/notes", "/visitors", "/tokens"))
        else "200"
    )
    ok_schema: dict[str, Any] = (
        {"type": "object"}
        if route.produces == "application/json"
        else {"type": "string"}
    )
    content: dict[str, Any] = {route.produces: {"schema": ok_schema}}
    if any(
        p.name == "format" and "csv" in p.schema.get("enum", ()) for p in route.params
    ):
        content["text/csv"] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {
        ok: {"description": DESCRIPTIONS[ok], "content": content},
    }
    codes = ["400", "401", "403", "503"]
    if any(p.where == "path" for p in route.params):
        codes.append("404")
    if route.method in ("POST", "PUT", "DELETE"):
        codes.append("409")
    if route.body is not None:
        codes += ["413", "415"]
        if route.template.endswith(("/visitors", "/trace", "/expand")):
            codes.append("404")
    if route.template == api.PREFIX + "/visitors":
        codes.append("409")
    for code in sorted(set(codes)):
        responses[code] = _error_response(code)
    op: dict[str, Any] = {
        "operationId": (route.method.lower() + route.template[len(api.PREFIX) :])
        .replace("/", "_")
        .replace("{", "")
        .replace("}", "")
        .replace(".", "_"),
        "summary": route.summary,
        "tags": [route.tag],
        "description": f"Role: `{route.role}`. Audited.",
        "responses": responses,
    }
    params = [
        {
            "name": p.name,
            "in": p.where,
            "required": p.required or p.where == "path",
            "description": p.description,
            "schema": copy.deepcopy(dict(p.schema)),
        }
        for p in route.params
    ]
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": bool(route.body.get("required")),
            "content": {
                "application/json": {"schema": copy.deepcopy(dict(route.body))}
            },
        }
    return op


@functools.lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in api.ROUTES:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route)
    paths[api.PREFIX + "/openapi.json"] = {
        "get": {
            "operationId": "get_openapi",
            "summary": "this document",
            "tags": ["session"],
            "security": [],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    paths[api.PREFIX + "/health"] = {
        "get": {
            "operationId": "get_health",
            "summary": "liveness of the HTTP server (no token)",
            "tags": ["session"],
            "security": [],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "BlueGate central API",
            "version": VERSION,
            "description": (
                "Contact tracing queries, case management, gate and visitor log, fleet "
                "health. Bearer tokens with roles ops and admin; every call is audited "
                "with identifiers pseudonymised. Times are ISO 8601 (no zone: UTC)."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [
            {"name": n}
            for n in ("session", "queries", "cases", "gate", "fleet", "admin")
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "bgt_ token",
                }
            },
            "schemas": {"Error": ERROR},
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy)."""
    return copy.deepcopy(_document())

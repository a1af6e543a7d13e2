"""Caspio's response schemas, kept in the repository, and a validator over them.

``caspio-rest-v3-responses.json`` is cut from Caspio's own OpenAPI document by
``tools/openapi_subset.py`` (its ``x-source`` names the document and its SHA-256). The
conformance tests (emulator answers) and the cassette tests (recorded answers) validate
against it, in every clone: nothing here depends on a file outside the repository.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SUBSET = Path(__file__).with_name("caspio-rest-v3-responses.json")


def relax(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: ``nullable`` becomes a null type; and .NET's
    ``Dictionary<string, object>`` (``additionalProperties: {"type": "object"}``) means "any
    JSON value", not "a JSON object" (records carry strings and numbers)."""
    if isinstance(node, list):
        return [relax(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: relax(v) for k, v in node.items()}
    if out.get("additionalProperties") == {"type": "object"}:
        out["additionalProperties"] = {}
    if out.pop("nullable", False):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif "allOf" in out or "oneOf" in out or "$ref" in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The relaxed subset document (its absence is an error, never a skip)."""
    relaxed: dict[str, Any] = relax(json.loads(SUBSET.read_text()))
    return relaxed


def response_schema(path_template: str, method: str = "get", status: str = "200") -> Any:
    return document()["paths"][path_template][method]["responses"][status]["content"][
        "application/json"
    ]["schema"]


def validate(path_template: str, body: Any, method: str = "get", status: str = "200") -> None:
    """Raises ``jsonschema.ValidationError`` unless ``body`` fits Caspio's schema."""
    doc = document()
    registry: Registry[Any] = Registry().with_resource("urn:openapi", Resource.opaque(doc))
    schema = response_schema(path_template, method, status)
    wrapped = json.loads(json.dumps(schema).replace('"#/components', '"urn:openapi#/components'))
    Draft202012Validator(wrapped, registry=registry).validate(body)

"""Cut the part of Caspio's OpenAPI document the tests need into the repository.

Why: the conformance and cassette tests validate answers against Caspio's own response
schemas. The full document (``caspio-rest-v3-openapi.json``, downloaded from a live account's
``/integrations/rest/v3/swagger/documentation``) lives outside this repository, so a clone
without it skipped every conformance test. This keeps, for each implemented operation, its
``responses`` and every component schema they reach, plus a note of the source and its SHA-256
so ``tests/emulator/test_openapi_subset.py`` can tell when the subset drifts from the source.

Run: ``.venv/bin/python -m tools.openapi_subset [SOURCE]`` (rewrites the subset file).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "caspio" / "caspio-rest-v3-openapi.json"
SUBSET = ROOT / "tests" / "openapi" / "caspio-rest-v3-responses.json"

IMPLEMENTED: dict[str, tuple[str, ...]] = {
    "/v3/tables": ("get",),
    "/v3/tables/{tableName}": ("get",),
    "/v3/tables/{tableName}/fields": ("get", "post"),
    "/v3/tables/{tableName}/fields/{fieldName}": ("get", "put", "delete"),
    "/v3/tables/{tableName}/records": ("get", "post", "put", "delete"),
    "/v3/tables/{tableName}/passwordFields": ("get",),
    "/v3/tables/{tableName}/attachments/{attachmentFieldName}/fileInfo": ("get",),
    "/v3/views/{viewName}/attachments/{attachmentFieldName}/fileInfo": ("get",),
    "/v3/views": ("get",),
    "/v3/views/{viewName}": ("get",),
    "/v3/views/{viewName}/fields": ("get",),
    "/v3/views/{viewName}/fields/{fieldName}": ("get",),
    "/v3/views/{viewName}/records": ("get",),
    "/v3/files": ("get",),
    "/v3/files/folders": ("get",),
    "/v3/files/folders/{externalKey}": ("get",),
    "/v3/files/{externalKey}/fileInfo": ("get",),
    "/v3/files/path/fileInfo": ("get",),
    "/v3/bridgeApplications": ("get",),
    "/v3/bridgeApplications/{externalKey}": ("get",),
    "/v3/bridgeApplications/{externalKey}/datapages": ("get",),
    "/v3/bridgeApplications/{externalKey}/datapages/{appKey}": ("get",),
    "/v3/directories": ("get",),
    "/v3/directories/{directoryId}/users": ("get",),
    "/v3/dataImportExportTasks": ("get",),
    "/v3/dataImportExportTasks/{externalKey}": ("get",),
    "/v3/outgoingWebhooks": ("get", "post"),
    "/v3/outgoingWebhooks/{webhookId}": ("get", "put", "delete"),
    "/v3/outgoingWebhooks/{webhookId}/events": ("get", "post"),
    "/v3/outgoingWebhooks/{webhookId}/events/{eventId}": ("get", "put", "delete"),
}
"""The operations the emulator answers and the tests validate (path -> methods)."""


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*map(_refs, node)) if node else set()
    return set()


def build(source: Path) -> dict[str, Any]:
    """The subset document of ``source``: implemented operations' responses + reached schemas."""
    raw = source.read_bytes()
    doc = json.loads(raw)
    paths: dict[str, Any] = {}
    for path, methods in IMPLEMENTED.items():
        paths[path] = {m: {"responses": doc["paths"][path][m]["responses"]} for m in methods}
    schemas: dict[str, Any] = {}
    todo = _refs(paths)
    while todo:
        ref = todo.pop()
        name = ref.rsplit("/", 1)[-1]
        if not ref.startswith("#/components/schemas/") or name in schemas:
            continue
        schemas[name] = doc["components"]["schemas"][name]
        todo |= _refs(schemas[name])
    return {
        "openapi": doc["openapi"],
        "info": {
            "title": doc["info"]["title"] + " (response schemas of the implemented operations)",
            "version": doc["info"]["version"],
        },
        "x-source": {
            "document": "caspio-rest-v3-openapi.json: Caspio's OpenAPI document for REST v3, "
            "downloaded from a live account's /integrations/rest/v3/swagger/documentation",
            "sha256": hashlib.sha256(raw).hexdigest(),
            "cut-by": "tools/openapi_subset.py",
        },
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def render(subset: dict[str, Any]) -> str:
    return json.dumps(subset, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else DEFAULT_SOURCE
    SUBSET.parent.mkdir(parents=True, exist_ok=True)
    SUBSET.write_text(render(build(source)))
    print(f"wrote {SUBSET.relative_to(ROOT)} from {source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``docs/ipc.schema.json``: one JSON Schema document of every method's params and results.

Generated from :mod:`.schemas` (the models the service validates with), so it cannot
drift from the code; a test checks the committed file is current. Regenerate with::

    python -m segmentkit.ipc.schema_doc docs/ipc.schema.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from .errors import ERROR_NAMES, ErrorCode
from .schemas import METHODS, NOTIFICATIONS

REF = "#/$defs/{model}"


def build() -> dict[str, Any]:
    """The schema document as a dict."""
    wanted: list[tuple[Any, Any]] = []
    for params, result, _ in METHODS.values():
        wanted += [(params, "validation"), (result, "serialization")]
    wanted += [(params, "serialization") for params, _ in NOTIFICATIONS.values()]
    refs, defs = models_json_schema(wanted, ref_template=REF)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "segmentkit IPC: JSON-RPC 2.0 methods",
        "description": "Params (by name) and results of every method of `segmentkit serve`; see docs/ipc.md.",
        "methods": {
            name: {"description": doc, "params": refs[(params, "validation")],
                   "result": refs[(result, "serialization")]}
            for name, (params, result, doc) in METHODS.items()
        },
        "notifications": {
            name: {"description": doc, "params": refs[(params, "serialization")]}
            for name, (params, doc) in NOTIFICATIONS.items()
        },
        "errors": [{"code": int(code), "name": ERROR_NAMES[code]} for code in ErrorCode],
        "$defs": defs["$defs"],
    }


def render() -> str:
    """The document as the committed file's text."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def validator(kind: str, name: str) -> Any:
    """A ``jsonschema`` validator for ``kind`` ("params" / "result" / "notification") of ``name``."""
    import jsonschema

    document = build()
    section = document["notifications"][name]["params"] if kind == "notification" else document["methods"][name][kind]
    return jsonschema.Draft202012Validator({**section, "$defs": document["$defs"]})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if not args:
        sys.stdout.write(text)
        return 0
    Path(args[0]).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A JSON run file checked against its shape (``grpc_user.run_files.schema``: the JSON Schema of every field a
report reads), so that a hand-edited or foreign file (an audit status that is no text, a figure that is no number)
becomes one line naming the file and the field, never a traceback."""

from __future__ import annotations

from typing import Any

import jsonschema


def shape_problem(value: Any, schema: dict[str, Any]) -> str:
    """The first field of ``value`` that does not have its declared shape, in words ('' when all do)."""
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if error is None:
        return ""
    where = error.json_path.removeprefix("$.").removeprefix("$") or "the file"
    return f"{where}: {error.message}"

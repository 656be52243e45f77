"""Schemathesis hooks for tests/test_openapi_fuzz.py (loaded with SCHEMATHESIS_HOOKS).

* `weir_server_error` replaces the built-in `not_a_server_error`: a 5xx passes only when
  the operation documents that exact status (the reference answers 500 on purpose there,
  e.g. `failed to parse trigger from ...`) and a text body matches the documented
  pattern. Every other 5xx is a failure.
* `application/jsonl` bodies are parsed (one JSON value a line) so that their schema is
  checked like JSON's.
* Generated requests never name the database the test keeps intact
  (`WEIR_FUZZ_KEEP_DB`), and the request-trigger route is sometimes called on the path
  of the trigger the test created (`WEIR_FUZZ_REQUEST_PATH`), so a plugin really runs.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis
from hypothesis import strategies as st

KEEP_DB = os.environ.get("WEIR_FUZZ_KEEP_DB", "")
REQUEST_PATH = os.environ.get("WEIR_FUZZ_REQUEST_PATH", "")


@schemathesis.check
def weir_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    status = response.status_code
    if status < 500:
        return None
    documented = case.operation.responses.find_by_status_code(status)
    if documented is None or documented.status_code != str(status):
        raise AssertionError(f"undocumented server error {status}: {response.text[:500]!r}")
    content = documented.definition.get("content") or {}
    ctype = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    pattern = ((content.get(ctype) or {}).get("schema") or {}).get("pattern")
    if ctype == "text/plain" and pattern and not re.search(pattern, response.text):
        raise AssertionError(f"server error {status} whose body is not one the reference "
                             f"gives here ({pattern}): {response.text[:500]!r}")
    return True


@schemathesis.deserializer("application/jsonl")
def _jsonl(ctx: Any, response: Any) -> list[Any]:
    return [json.loads(line) for line in response.content.decode().splitlines() if line]


def _mentions_keep_db(value: Any) -> bool:
    if not KEEP_DB or value is None:
        return False
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = str(value)
    return KEEP_DB in text


@schemathesis.hook
def filter_query(ctx: Any, query: Any) -> bool:
    return not _mentions_keep_db(query)


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    return not _mentions_keep_db(body)


@schemathesis.hook
def filter_path_parameters(ctx: Any, path_parameters: Any) -> bool:
    return not _mentions_keep_db(path_parameters)


@schemathesis.hook.apply_to(path_regex=r"^/api/v3/engine/")
def flatmap_path_parameters(ctx: Any, path_parameters: Any) -> Any:
    if not REQUEST_PATH:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**(path_parameters or {}), "path": REQUEST_PATH}])

"""An HTTP endpoint: `POST /api/v3/engine/<path>` with a JSON body.

Trigger: `request:hello-world` (any path). Logs the query parameters and headers,
parses the JSON body, writes one `request_data` row (its fields are the body's
numbers, strings and booleans; tag `source` from the `source` query parameter,
default `api`), and answers `(200, headers, json)`. The row is queryable when the
response arrives: buffered writes are committed before the response is sent.
A GET (or an empty body) just answers with a greeting.
"""

# ruff: noqa: F821 - LineBuilder is a builtin inside the processing engine

import json


def process_request(influxdb3_local, query_parameters, request_headers, request_body, args=None):
    for k, v in query_parameters.items():
        influxdb3_local.info(f"query_parameters: {k}={v}")
    for k, v in request_headers.items():
        influxdb3_local.info(f"request_headers: {k}={v}")

    if not request_body:
        name = query_parameters.get("name", "world")
        return {"message": f"Hello, {name}!"}

    try:
        data = json.loads(request_body)
    except ValueError as e:
        return {"error": f"the body is not JSON: {e}"}, 400
    if not isinstance(data, dict):
        return {"error": "expected a JSON object"}, 400
    influxdb3_local.info("parsed JSON request body:", data)

    line = LineBuilder("request_data").tag("source", query_parameters.get("source", "api"))
    fields = 0
    for key, value in data.items():
        if isinstance(value, bool):
            line.bool_field(key, value)
        elif isinstance(value, int):
            line.int64_field(key, value)
        elif isinstance(value, float):
            line.float64_field(key, value)
        elif isinstance(value, str):
            line.string_field(key, value)
        else:
            continue
        fields += 1
    if not fields:
        return {"error": "the object has no number, string or boolean values"}, 400
    influxdb3_local.write(line)
    body = json.dumps({"status": "ok", "line": line.build()})
    return 200, {"Content-Type": "application/json"}, body

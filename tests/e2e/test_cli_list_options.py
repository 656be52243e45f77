"""List flags of the `influxdb3` CLI against a real server: repeated and comma-separated
values accumulate, as the reference's clap `Vec<_>` options with `value_delimiter = ','` do
(`--trigger-arguments a=1 --trigger-arguments b=2,c=3` gives a, b and c), and what the
server stores is what the plugin gets."""

from __future__ import annotations

from pathlib import Path

import httpx

from conftest import WeirServer
from support.cli import cli

ARGS_PLUGIN = """\
def process_request(influxdb3_local, query_parameters, request_headers, request_body,
                    args=None):
    return {"args": args}
"""


def test_repeated_trigger_arguments_accumulate(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "args.py").write_text(ARGS_PLUGIN)
    srv: WeirServer = server_factory(plugin_dir=plugins).start()
    cli(srv, "create", "database", "d")
    cli(srv, "create", "trigger", "-d", "d", "--path", "args.py", "--trigger-spec",
        "request:args", "--trigger-arguments", "a=1", "--trigger-arguments", "b=2,c=3",
        "--trigger-arguments", "a=4,url=http://x/?q=1", "args")
    rows = srv.rows("d", "SELECT argument_key, argument_value FROM "
                         "system.processing_engine_trigger_arguments "
                         "WHERE trigger_name = 'args' ORDER BY argument_key")
    # a key given twice keeps its last value, as the reference's CLI (a map) does
    assert rows == [{"argument_key": "a", "argument_value": "4"},
                    {"argument_key": "b", "argument_value": "2"},
                    {"argument_key": "c", "argument_value": "3"},
                    {"argument_key": "url", "argument_value": "http://x/?q=1"}]
    r = httpx.get(f"{srv.url}/api/v3/engine/args", timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["args"] == {"a": "4", "b": "2", "c": "3", "url": "http://x/?q=1"}
    # `show summary` lists them from the same table
    out = cli(srv, "show", "summary", "--database", "d").stdout
    assert "a=4" in out and "b=2" in out and "c=3" in out, out

"""What a plugin's `os.environ` holds, against a real server and its real plugin workers.

InfluxDB 3 runs plugins in-process, so they read credentials the server was started with
(`NORI_API_KEY`, `TWILIO_SID`, `INFLUXDB3_AUTH_TOKEN`). Weir's workers inherit the server's
environment too, except the variables `serve` reads itself (object-store keys, the admin
token file, ...), and as `--plugin-env-allow` / `--plugin-env-deny` narrow it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import WeirServer, weir_cmd

SEEN = ("NORI_API_KEY", "TWILIO_SID", "TWILIO_TOKEN", "INFLUXDB3_AUTH_TOKEN",
        "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "INFLUXDB3_ADMIN_TOKEN_FILE", "INFLUXDB3_PLUGIN_ENV_DENY", "NORI_DEBUG", "OTHER",
        "HANDED", "HOME", "PLUGIN_DIR", "TZ")

ENV_PLUGIN = f"""\
import json, os

def process_request(influxdb3_local, query_parameters, request_headers, request_body,
                    args=None):
    return {{"env": {{k: os.environ.get(k) for k in {SEEN!r}}}, "args": args}}

def process_scheduled_call(influxdb3_local, call_time, args=None):
    influxdb3_local.info(json.dumps({{k: os.environ.get(k) for k in {SEEN!r}}}))
"""


def _plugins(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "env.py").write_text(ENV_PLUGIN)
    return plugins


def _plugin_env(srv: WeirServer, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Create a request trigger running env.py and call it: what the plugin saw."""
    h = headers or {}
    r = httpx.post(f"{srv.url}/api/v3/configure/database", json={"db": "d"}, headers=h)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{srv.url}/api/v3/configure/processing_engine_trigger", headers=h, json={
        "db": "d", "plugin_filename": "env.py", "trigger_name": "env",
        "trigger_specification": "request:env", "trigger_arguments": None,
        "trigger_settings": {"run_async": False, "error_behavior": "log"}, "disabled": False})
    assert r.status_code == 200, r.text
    r = httpx.get(f"{srv.url}/api/v3/engine/env", headers=h, timeout=60)
    assert r.status_code == 200, r.text
    env: dict[str, str] = r.json()["env"]
    return env


def test_plugins_inherit_the_environment_but_not_the_servers_own_secrets(
        server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "admin.json"
    p = subprocess.run([*weir_cmd(), "create", "token", "--admin", "--offline",
                        "--output-file", str(token_file)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    admin = json.loads(token_file.read_text())["token"]
    plugins = _plugins(tmp_path)
    srv: WeirServer = server_factory(
        plugin_dir=plugins, auth=True, extra_args=["--plugin-env-deny", "TWILIO_T*"],
        env={"INFLUXDB3_ADMIN_TOKEN_FILE": str(token_file),  # the server reads it: withheld
             "NORI_API_KEY": "nori-key", "TWILIO_SID": "AC123", "TWILIO_TOKEN": "tw-token",
             "INFLUXDB3_AUTH_TOKEN": "apiv3_for-plugins", "AWS_PROFILE": "plugins",
             "AWS_SECRET_ACCESS_KEY": "aws-secret-value", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}
    ).start()
    env = _plugin_env(srv, {"Authorization": f"Bearer {admin}"})
    # what real plugins read: there, as the server got it
    assert env["NORI_API_KEY"] == "nori-key" and env["TWILIO_SID"] == "AC123"
    assert env["INFLUXDB3_AUTH_TOKEN"] == "apiv3_for-plugins"
    assert env["AWS_PROFILE"] == "plugins"  # not a serve option's variable
    # the server's own: its object-store credentials and its admin token file
    assert env["AWS_SECRET_ACCESS_KEY"] is None and env["AWS_ACCESS_KEY_ID"] is None
    assert env["INFLUXDB3_ADMIN_TOKEN_FILE"] is None
    # --plugin-env-deny, a pattern
    assert env["TWILIO_TOKEN"] is None
    assert env["PLUGIN_DIR"] == str(plugins) and env["TZ"] == "UTC"
    # the log names what plugins do not get (names only, never values)
    log = srv.log()
    line = next(ln for ln in log.splitlines() if "plugins see the server's environment" in ln)
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "INFLUXDB3_ADMIN_TOKEN_FILE",
                 "TWILIO_TOKEN"):
        assert name in line, line
    assert "NORI_API_KEY" not in line
    for secret in ("aws-secret-value", "AKIAEXAMPLE", "tw-token", "nori-key"):
        assert secret not in log
    # the object-store variables belong to the s3 store's own flags now (#13), which a
    # server on the file store does not warn about as ignored
    assert "--aws-secret-access-key (from AWS_SECRET_ACCESS_KEY)" not in log


@pytest.mark.file_only("its made-up AWS_SESSION_TOKEN would be the server's own S3 "
                       "session token on an S3 run, and S3 refuses it")
def test_allow_deny_and_hand_over(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv: WeirServer = server_factory(
        plugin_dir=_plugins(tmp_path),
        extra_args=["--plugin-env-allow", "NORI_*", "--plugin-env-allow",
                    "TWILIO_SID,AWS_*", "--plugin-env-allow", "AWS_SECRET_ACCESS_KEY"],
        env={"INFLUXDB3_PLUGIN_ENV_DENY": "NORI_DEBUG", "WEIR_PLUGIN_ENV": "HANDED",
             "NORI_API_KEY": "nori-key", "NORI_DEBUG": "1", "TWILIO_SID": "AC123",
             "TWILIO_TOKEN": "tw-token", "OTHER": "other", "HANDED": "handed",
             "AWS_PROFILE": "plugins", "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
             "AWS_SESSION_TOKEN": "aws-session"}).start()
    env = _plugin_env(srv)
    # allowed: by pattern, by name (repeated and comma-separated flags together)
    assert (env["NORI_API_KEY"], env["TWILIO_SID"], env["AWS_PROFILE"]) == (
        "nori-key", "AC123", "plugins")
    # not allowed; denied (INFLUXDB3_PLUGIN_ENV_DENY) although NORI_* allows it
    assert env["TWILIO_TOKEN"] is None and env["OTHER"] is None and env["NORI_DEBUG"] is None
    # a server variable reaches plugins only when named exactly, never through a pattern
    assert env["AWS_SECRET_ACCESS_KEY"] == "aws-secret-value"
    assert env["AWS_SESSION_TOKEN"] is None
    # WEIR_PLUGIN_ENV still hands names over; what Python needs is always there
    assert env["HANDED"] == "handed" and env["HOME"] is not None
    assert env["INFLUXDB3_PLUGIN_ENV_DENY"] is None and env["TZ"] == "UTC"
    # a dry run (`influxdb3 test`) runs in a worker of the same making
    r = httpx.post(f"{srv.url}/api/v3/plugin_test/schedule",
                   json={"filename": "env.py", "database": "d"}, timeout=60)
    assert r.status_code == 200, r.text
    (seen,) = [json.loads(ln[6:]) for ln in r.json()["log_lines"] if ln.startswith("INFO: {")]
    assert seen == env

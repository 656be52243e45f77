"""Which of the server's environment variables a plugin worker inherits
(`weir.engine.plugin_env`), from the policy that `serve` builds; the end-to-end checks with
real workers are in tests/e2e/test_plugin_env.py."""

from __future__ import annotations

from weir.config import ServeConfig
from weir.engine.plugin_env import PluginEnvPolicy, split_names

SERVER = {
    "PATH": "/usr/bin", "HOME": "/home/weir", "LANG": "C.UTF-8", "LC_TIME": "C",
    "NORI_API_KEY": "k", "TWILIO_SID": "s", "TWILIO_TOKEN": "t", "INFLUXDB3_AUTH_TOKEN": "a",
    "AWS_SECRET_ACCESS_KEY": "x", "AWS_PROFILE": "p", "INFLUXDB3_ADMIN_TOKEN_FILE": "/f",
    "PYTHONPATH": "/srv/weir/src", "PYTHONHOME": "/opt/py", "WEIR_PLUGIN_ENV": "",
}
OWN = ["AWS_SECRET_ACCESS_KEY", "INFLUXDB3_ADMIN_TOKEN_FILE"]


def policy(**kw: object) -> PluginEnvPolicy:
    return PluginEnvPolicy.from_config(ServeConfig(server_env_vars=OWN, **kw))  # type: ignore[arg-type]


def test_default_is_everything_but_the_servers_own_and_its_interpreters() -> None:
    env = policy().apply(SERVER)
    assert set(SERVER) - set(env) == {"AWS_SECRET_ACCESS_KEY", "INFLUXDB3_ADMIN_TOKEN_FILE",
                                      "PYTHONPATH", "PYTHONHOME"}
    assert env["NORI_API_KEY"] == "k" and env["INFLUXDB3_AUTH_TOKEN"] == "a"
    assert policy().withheld(SERVER) == ["AWS_SECRET_ACCESS_KEY", "INFLUXDB3_ADMIN_TOKEN_FILE",
                                         "PYTHONHOME", "PYTHONPATH"]


def test_deny_patterns_win() -> None:
    env = policy(plugin_env_deny=["TWILIO_*,HOME", "nori_api_key"]).apply(SERVER)
    assert "TWILIO_SID" not in env and "TWILIO_TOKEN" not in env and "HOME" not in env
    assert env["NORI_API_KEY"] == "k"  # patterns are case-sensitive, as variable names are
    env = policy(plugin_env_allow=["NORI_API_KEY"], plugin_env_deny=["NORI_*"]).apply(SERVER)
    assert "NORI_API_KEY" not in env


def test_allow_keeps_only_its_names_and_what_python_needs() -> None:
    env = policy(plugin_env_allow=["TWILIO_*", "AWS_*"]).apply(SERVER)
    assert sorted(env) == ["AWS_PROFILE", "HOME", "LANG", "LC_TIME", "PATH", "TWILIO_SID",
                           "TWILIO_TOKEN"]
    # an empty allow list: only the minimum
    assert sorted(policy(plugin_env_allow=[""]).apply(SERVER)) == ["HOME", "LANG", "LC_TIME",
                                                                   "PATH"]


def test_an_exact_name_hands_a_withheld_variable_over() -> None:
    env = policy(plugin_env_allow=["AWS_SECRET_ACCESS_KEY,PYTHONPATH"]).apply(SERVER)
    assert env["AWS_SECRET_ACCESS_KEY"] == "x" and env["PYTHONPATH"] == "/srv/weir/src"
    assert "INFLUXDB3_ADMIN_TOKEN_FILE" not in env
    # the older WEIR_PLUGIN_ENV does the same, with or without an allow list
    server = {**SERVER, "WEIR_PLUGIN_ENV": "INFLUXDB3_ADMIN_TOKEN_FILE, OTHER", "OTHER": "o"}
    assert policy().apply(server)["INFLUXDB3_ADMIN_TOKEN_FILE"] == "/f"
    env = policy(plugin_env_allow=["NORI_API_KEY"]).apply(server)
    assert env["OTHER"] == "o" and env["INFLUXDB3_ADMIN_TOKEN_FILE"] == "/f"
    assert "TWILIO_SID" not in env


def test_a_worker_spec_without_a_policy_still_withholds_the_interpreters() -> None:
    env = PluginEnvPolicy().apply(SERVER)
    assert "PYTHONPATH" not in env and env["AWS_SECRET_ACCESS_KEY"] == "x"


def test_split_names() -> None:
    assert split_names(["A,B", " C ", "", ",D,"]) == ("A", "B", "C", "D")

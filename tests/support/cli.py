"""Driving a real server from end-to-end tests as a user does: the `influxdb3` CLI
against it, and polling until something it does shows."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

from conftest import WeirServer, weir_cmd

T = TypeVar("T")


def cli(server: WeirServer, *args: str, check: bool = True, input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    """`influxdb3 <args>` against `server` (INFLUXDB3_HOST_URL); with `check`, a non-zero
    exit fails the test with the command's output and the server's log."""
    env = {**os.environ, "INFLUXDB3_HOST_URL": server.url}
    p = subprocess.run([*weir_cmd(), *args], capture_output=True, text=True, env=env,
                       timeout=120, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"influxdb3 {' '.join(args)} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}\n--- server log ---\n{server.log()}")
    return p


def create_admin_token(server: WeirServer) -> str:
    """`influxdb3 create token --admin` against `server`: the token it prints."""
    out = cli(server, "create", "token", "--admin").stdout
    return next(line.split("Token: ")[1] for line in out.splitlines()
                if line.startswith("Token: "))


def poll(fn: Callable[[], T], timeout: float = 60.0, interval: float = 0.1) -> T | None:
    """Call `fn` until it returns something truthy and return that; after `timeout`
    seconds, its last (falsy) value, for the caller's assert to report."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    return last

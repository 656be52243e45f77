"""What every client command shares: --host/--token/--database, the HTTP client, and
errors printed as one clear line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import click
import httpx

DEFAULT_HOST = "http://127.0.0.1:8181"


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


@dataclass
class Client:
    host: str
    token: str | None
    tls_ca: str | None = None
    tls_no_verify: bool = False
    timeout: float = 300.0

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None, content: bytes | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        hdrs = dict(headers or {})
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        verify: bool | str = False if self.tls_no_verify else (self.tls_ca or True)
        url = self.host.rstrip("/") + path
        try:
            with httpx.Client(timeout=self.timeout, verify=verify) as c:
                return c.request(method, url, params=params, json=json_body, content=content,
                                 headers=hdrs)
        except httpx.ConnectError as e:
            fail(f"error: could not connect to {self.host}: {_reason(e)} — is the server "
                 "running? (set --host or INFLUXDB3_HOST_URL)")
        except httpx.TimeoutException:
            fail(f"error: {self.host} did not answer within {self.timeout:.0f}s")
        except httpx.HTTPError as e:
            fail(f"error: request to {url} failed: {e}")

    def ok(self, method: str, path: str, context: str, **kw: Any) -> httpx.Response:
        """Send; on an error status print `<context>: <server message>` and exit 1."""
        r = self.request(method, path, **kw)
        if r.status_code >= 400:
            fail(f"{context}: {server_message(r)}")
        return r


def _reason(e: Exception) -> str:
    text = str(e)
    return "connection refused" if "refused" in text.lower() or not text else text


def server_message(r: httpx.Response) -> str:
    """The error text of a response, whatever its shape."""
    text = r.text.strip()
    try:
        body = r.json()
    except ValueError:
        return f"{text or r.reason_phrase} (HTTP {r.status_code})"
    if isinstance(body, dict):
        msg = body.get("error") or body.get("message") or text
        data = body.get("data")
        if isinstance(data, dict):
            msg = f"{msg}: line {data.get('line_number')}: {data.get('error_message')}"
        elif isinstance(data, list):
            msg = msg + "".join(f"\n  line {d.get('line_number')}: {d.get('error_message')}"
                                for d in data if isinstance(d, dict))
        return f"{msg} (HTTP {r.status_code})"
    return f"{json.dumps(body)} (HTTP {r.status_code})"


def client_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--host, --token, --tls-ca, --tls-no-verify; the command receives `client`."""
    f = click.option("--tls-no-verify", envvar="INFLUXDB3_TLS_NO_VERIFY", is_flag=True,
                     help="Do not verify the server's TLS certificate.")(f)
    f = click.option("--tls-ca", envvar="INFLUXDB3_TLS_CA", default=None,
                     help="CA certificate file for TLS.")(f)
    f = click.option("--token", envvar="INFLUXDB3_AUTH_TOKEN", default=None,
                     help="Auth token (env INFLUXDB3_AUTH_TOKEN).")(f)
    f = click.option("-H", "--host", envvar="INFLUXDB3_HOST_URL", default=DEFAULT_HOST,
                     show_default=True, help="Server URL (env INFLUXDB3_HOST_URL).")(f)

    def wrapper(*args: Any, host: str, token: str | None, tls_ca: str | None,
                tls_no_verify: bool, **kw: Any) -> Any:
        if not host.startswith(("http://", "https://")):
            host = "http://" + host
        return f(*args, client=Client(host, token, tls_ca, tls_no_verify), **kw)

    wrapper.__name__ = f.__name__
    wrapper.__doc__ = f.__doc__
    wrapper.__click_params__ = getattr(f, "__click_params__", [])  # type: ignore[attr-defined]
    f.__click_params__ = []  # type: ignore[attr-defined]
    return wrapper


def database_option(required: bool = True) -> Callable[[Callable[..., Any]], Any]:
    return click.option("-d", "--database", envvar="INFLUXDB3_DATABASE_NAME",
                        required=required, help="Database name (env INFLUXDB3_DATABASE_NAME).")


def key_values(text: str | None, flag: str) -> dict[str, str] | None:
    """`k=v,k2=v2` -> dict; split on commas, then on the first `=`."""
    if not text:
        return None
    out = {}
    for item in text.split(","):
        if not item:
            continue
        k, eq, v = item.partition("=")
        if not eq or not k:
            raise click.BadParameter(f"expected key=value pairs separated by commas, got "
                                     f"{item!r}", param_hint=flag)
        out[k] = v
    return out


FORMAT_CHOICE = click.Choice(["pretty", "json", "jsonl", "csv", "parquet"])

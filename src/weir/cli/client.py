"""What every client command shares: --host/--token/--database and the TLS flags, the
HTTP client, and turning any failure into one clear line on stderr."""

from __future__ import annotations

import functools
import json
import re
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from weir.cli.base import fail

if TYPE_CHECKING:
    import httpx

# httpx (~0.1 s to import) is imported where a request is made, not here: `influxdb3 serve`
# and `--help` load this module but never send one.

DEFAULT_HOST = "http://127.0.0.1:8181"
_UNSET: Any = object()

#: --format values and what the server is sent for each (the reference's serde names)
FORMATS = ("pretty", "json", "jsonl", "csv", "parquet")
WIRE_FORMAT = {"pretty": "pretty", "json": "json", "jsonl": "json_lines", "csv": "csv",
               "parquet": "parquet"}
FORMAT_CHOICE = click.Choice(FORMATS)


class RequestError(Exception):
    """A request that failed (no connection, or an error status), as the one line to
    print. The top-level command prints it and exits with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Client:
    """One server: its URL, token and TLS settings. A failed request raises RequestError
    naming what failed; callers only see successful responses from `ok`."""

    def __init__(self, host: str, token: str | None = None, tls_ca: str | None = None,
                 tls_no_verify: bool = False) -> None:
        self.host = normalize_host(host)
        self.token = token or None
        self.tls_ca = tls_ca
        self.tls_no_verify = tls_no_verify
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    def with_host(self, host: str | None) -> Client:
        """Point at another URL with the same credentials (`--query-host`, `--write-host`)."""
        if host:
            self.close()
            self.host = normalize_host(host)
        return self

    @property
    def http(self) -> httpx.Client:
        with self._lock:  # `write` sends from several threads: one client for all
            if self._http is None:
                import httpx
                self._http = httpx.Client(base_url=self.host, verify=self._verify(),
                                          timeout=httpx.Timeout(None, connect=10.0))
            return self._http

    def _verify(self) -> bool | ssl.SSLContext:
        if self.tls_no_verify:
            return False
        if self.tls_ca:
            try:
                return ssl.create_default_context(cafile=self.tls_ca)
            except (OSError, ssl.SSLError) as e:
                raise RequestError(f"error: --tls-ca: cannot load CA certificate "
                                   f"{self.tls_ca}: {getattr(e, 'strerror', None) or e}", 2
                                   ) from None
        return True

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json_body: Any = _UNSET, content: bytes | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        hdrs = dict(headers or {})
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        kw: dict[str, Any] = {"params": params, "headers": hdrs}
        if json_body is not _UNSET:
            kw["json"] = json_body
        elif content is not None:
            kw["content"] = content
        http = self.http
        import httpx  # already loaded by `self.http`
        try:
            return http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise RequestError(self._explain(e, method, path)) from None

    def _explain(self, e: httpx.HTTPError, method: str, path: str) -> str:
        import httpx
        if isinstance(e, httpx.ConnectTimeout):
            return f"error: could not connect to {self.host}: timed out — is the server running?"
        if isinstance(e, httpx.ConnectError):
            reason = connect_reason(e)
            low = reason.lower()
            if "wrong_version_number" in low or "wrong version number" in low:
                return (f"error: TLS handshake with {self.host} failed: the server does not "
                        "speak TLS there (use an http:// URL?)")
            if "certificate" in low:
                return (f"error: TLS handshake with {self.host} failed: {reason} "
                        "(use --tls-ca FILE to trust its certificate, or --tls-no-verify)")
            if "ssl" in low:
                return f"error: TLS handshake with {self.host} failed: {reason}"
            return f"error: could not connect to {self.host}: {reason} — is the server running?"
        if isinstance(e, httpx.TimeoutException):
            return f"error: {method} {self.host}{path} timed out waiting for the server"
        if isinstance(e, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return (f"error: {method} {self.host}{path} failed: the connection broke: "
                    f"{str(e) or type(e).__name__}")
        return f"error: {method} {self.host}{path} failed: {str(e) or type(e).__name__}"

    def ok(self, method: str, path: str, context: str, **kw: Any) -> httpx.Response:
        """Send; an error status raises RequestError `<context>: <what the server said>`."""
        r = self.request(method, path, **kw)
        if r.status_code >= 400:
            raise RequestError(f"{context}: {describe_error(r)}")
        return r

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def normalize_host(host: str) -> str:
    """`localhost:8181` -> `http://localhost:8181`; reject what is not a URL."""
    h = host.strip()
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", h):
        h = "http://" + h
    parts = urlsplit(h)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"error: --host: {host!r} is not an http:// or https:// URL", 2)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        fail(f"error: --host: {host!r} has an invalid port", 2)
    return h.rstrip("/")


def connect_reason(e: Exception) -> str:
    text = str(e).strip()
    low = text.lower()
    if not text or "refused" in low:
        return "connection refused"
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return text[0].lower() + text[1:] if text else "connection failed"


def server_message(r: httpx.Response) -> str:
    """The error text of a response, whatever its shape (JSON `error`/`message`, a
    partial-write line list, or plain text)."""
    text = r.text.strip()
    try:
        body = r.json()
    except ValueError:
        return text or r.reason_phrase
    if not isinstance(body, dict):
        return text
    msg = body.get("error") or body.get("message") or text
    data = body.get("data")
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, list):
        details = line_errors([d for d in data if isinstance(d, dict)])
        if details:
            msg = f"{msg}: {details}"
    return str(msg)


def line_errors(items: list[dict[str, Any]], limit: int = 5) -> str:
    """`line 2: missing fields; lines 4, 7: invalid field value` - line errors grouped by
    message, so a thousand lines failing the same way make one short phrase."""
    groups: dict[str, list[Any]] = {}
    for d in items:
        groups.setdefault(str(d.get("error_message")), []).append(d.get("line_number"))
    parts = []
    for message, lines in list(groups.items())[:limit]:
        shown = ", ".join(str(n) for n in lines[:limit])
        more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
        parts.append(f"{'line' if len(lines) == 1 else 'lines'} {shown}{more}: {message}")
    if len(groups) > limit:
        parts.append(f"and {len(groups) - limit} other errors")
    return "; ".join(parts)


def describe_error(r: httpx.Response) -> str:
    msg = f"server responded with error [{r.status_code} {r.reason_phrase}]: {server_message(r)}"
    if r.status_code == 401:
        msg += " (pass --token or set INFLUXDB3_AUTH_TOKEN)"
    return msg


def client_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Adds --host, --token, --tls-ca, --tls-no-verify; the command gets `client`.
    Put it directly above the function so these options come last in the help."""

    @functools.wraps(f)
    def wrapper(*args: Any, host: str, token: str | None, tls_ca: str | None,
                tls_no_verify: bool, **kw: Any) -> Any:
        client = Client(host, token, tls_ca, tls_no_verify)
        try:
            return f(*args, client=client, **kw)
        finally:
            client.close()

    for opt in (
        click.option("--tls-no-verify", envvar="INFLUXDB3_TLS_NO_VERIFY", is_flag=True,
                     show_envvar=True, help="Do not verify the server's TLS certificate."),
        click.option("--tls-ca", envvar="INFLUXDB3_TLS_CA", default=None, metavar="FILE",
                     show_envvar=True, help="CA certificate (PEM) that signed the server's."),
        click.option("--token", envvar="INFLUXDB3_AUTH_TOKEN", default=None, metavar="TOKEN",
                     show_envvar=True, help="Auth token, sent as 'Authorization: Bearer'."),
        click.option("-H", "--host", envvar="INFLUXDB3_HOST_URL", default=DEFAULT_HOST,
                     metavar="URL", show_default=True, show_envvar=True,
                     help="URL of the running server."),
    ):
        wrapper = opt(wrapper)
    return wrapper


def database_option(required: bool = True, help: str = "Database name."
                    ) -> Callable[[Callable[..., Any]], Any]:
    return click.option("-d", "--database", envvar="INFLUXDB3_DATABASE_NAME", metavar="NAME",
                        required=required, show_envvar=True, help=help)


def key_values(values: str | Sequence[str] | None, flag: str) -> dict[str, str] | None:
    """`k=v,k2=v2` -> dict: every occurrence of the option split on commas, each pair on
    its first `=` (the reference's rule: values may contain `=` but not `,`). Occurrences
    accumulate (`--trigger-arguments a=1 --trigger-arguments b=2,c=3` is a, b and c); a key
    given twice keeps its last value, as the reference's map does. None when not given."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    if not values:
        return None
    out: dict[str, str] = {}
    for item in (i for text in values for i in text.split(",")):
        if not item.strip():
            continue
        k, eq, v = item.partition("=")
        if not eq:
            raise click.BadParameter(f'{item!r} must be formatted as "key=value" (pairs '
                                     "separated by commas)", param_hint=f"'{flag}'")
        out[k] = v
    return out


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def print_body(r: httpx.Response) -> None:
    """A response body as the reference prints it: the text plus one newline."""
    text = r.content.decode("utf-8", "replace")
    click.echo(text, nl=not text.endswith("\n"))

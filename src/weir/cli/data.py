"""`influxdb3 write` and `influxdb3 query`."""

from __future__ import annotations

import gzip
import io
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from weir.cli.base import WeirCommand, fail
from weir.cli.client import (
    FORMAT_CHOICE,
    WIRE_FORMAT,
    Client,
    client_options,
    database_option,
    describe_error,
)
from weir.cli.serve import SIZE

if TYPE_CHECKING:
    import httpx

# weir.engine.specs is imported inside the functions that use it, not here: it loads
# croniter and dateutil (~80 ms), which `influxdb3 --help` and most commands never need.

DEFAULT_MAX_REQUEST_SIZE = 10 * 1024 * 1024
READ_SIZE = 4 * 1024 * 1024

#: -p/--precision values -> the name the reference's client puts in the URL
PRECISIONS = {"auto": "auto", "s": "second", "second": "second", "ms": "millisecond",
              "millisecond": "millisecond", "us": "microsecond", "u": "microsecond",
              "microsecond": "microsecond", "ns": "nanosecond", "n": "nanosecond",
              "nanosecond": "nanosecond"}


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _open_input(args: tuple[str, ...], file: str | None, what: str) -> tuple[IO[bytes], bool]:
    """The input as a binary stream: the argument, else --file, else piped stdin; and
    whether the caller should close it."""
    if len(args) > 1:
        fail(f"error: ensure that a single {what} string is provided as the final argument, "
             "enclosed in quotes", 2)
    if args and file is not None:
        fail(f"error: give the {what} as an argument or with --file, not both", 2)
    if args:
        return io.BytesIO(args[0].encode("utf-8")), True
    if file is not None:
        try:
            return open(Path(file).expanduser(), "rb"), True
        except OSError as e:
            fail(f"error: cannot read {file}: {e.strerror or e}", 2)
    if stdin_is_tty():
        fail(f"error: no {what} given: pass it as an argument, with --file, or on stdin", 2)
    if hasattr(sys.stdin, "buffer"):
        return sys.stdin.buffer, False
    return io.BytesIO(sys.stdin.read().encode("utf-8")), True


# ---- write --------------------------------------------------------------------------------


def iter_chunks(stream: IO[bytes], max_size: int, read_size: int = READ_SIZE
                ) -> Iterator[bytes]:
    """Re-cut a byte stream into bodies of at most `max_size` bytes, each ending at a
    newline (the last may lack one). A single line longer than `max_size` is sent whole,
    so the server can refuse it with a clear error rather than receive half a line."""
    buf = bytearray()
    eof = False

    def fill(target: int) -> None:
        nonlocal eof
        while not eof and len(buf) < target:
            block = stream.read(read_size)
            if not block:
                eof = True
            else:
                buf.extend(block)

    while True:
        fill(max_size + 1)
        if not buf:
            return
        if eof and len(buf) <= max_size:
            yield bytes(buf)
            return
        nl = buf.rfind(b"\n", 0, max_size)
        if nl >= 0:
            end = nl + 1
        else:  # one line longer than max_size: find its end
            start = max_size
            nl = buf.find(b"\n", start)
            while nl < 0 and not eof:
                start = len(buf)
                fill(len(buf) + read_size)
                nl = buf.find(b"\n", start)
            end = nl + 1 if nl >= 0 else len(buf)
        yield bytes(buf[:end])
        del buf[:end]


def count_lines(chunk: bytes) -> int:
    if not chunk:
        return 0
    return chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)


def format_bytes(n: float) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{int(n)}B"


def format_elapsed(secs: float) -> str:
    from weir.engine.specs import format_humantime

    ms = int(secs * 1000)
    return format_humantime(ms * 1_000_000) if ms else "0s"


class WriteProgress:
    """The reference's per-request report on stderr: elapsed, requests, lines, bytes and
    their rates. On a terminal the line is rewritten in place."""

    def __init__(self, quiet: bool, total: int | None) -> None:
        self.quiet = quiet
        self.total = total
        self.start = time.monotonic()
        self.requests = self.lines = self.bytes = 0
        self.tty = sys.stderr.isatty()

    def add(self, chunk: bytes) -> None:
        self.requests += 1
        self.lines += count_lines(chunk)
        self.bytes += len(chunk)
        if not self.quiet:
            if self.tty:
                click.echo(f"\r\033[K  {self.report()}", err=True, nl=False)
            else:
                click.echo(f"  {self.report()}", err=True)

    def report(self) -> str:
        if not self.requests:
            return "no data written"
        secs = max(time.monotonic() - self.start, 1e-9)
        word = "request" if self.requests == 1 else "requests"
        pct = (f" [{100 * self.bytes // self.total}% of {format_bytes(self.total)}]"
               if self.total else "")
        return (f"{format_elapsed(secs)}: {self.requests} {word} "
                f"({self.requests / secs:.2f} requests/sec), {self.lines} lines "
                f"({round(self.lines / secs)} lines/s), {format_bytes(self.bytes)} "
                f"({format_bytes(self.bytes / secs)}/s){pct}")

    def finish(self) -> None:
        if self.quiet:
            return
        if not self.requests:
            click.echo(f"  {self.report()}", err=True)
        elif self.tty:
            click.echo("", err=True)


@click.command("write", cls=WeirCommand, example=[
    "influxdb3 write --database mydb 'cpu,host=a usage=0.5 1700000000' --precision s",
    "influxdb3 write --database mydb --file metrics.lp",
])
@database_option()
@click.option("-f", "--file", "file", default=None, metavar="FILE",
              help="Read line protocol from this file.")
@click.option("-p", "--precision", type=click.Choice(list(PRECISIONS)), default=None,
              help="Timestamp unit: auto, ns, us, ms or s [server default: auto].")
@click.option("--accept-partial/--no-accept-partial", default=None,
              help="Write the good lines of a batch that has bad ones [server default: yes].")
@click.option("--no-sync", is_flag=True, help="Return before the write is durable.")
@click.option("--gzip", "use_gzip", is_flag=True, help="Gzip the request bodies.")
@click.option("--max-request-size", default=DEFAULT_MAX_REQUEST_SIZE, type=SIZE,
              show_default=True, help="Largest body per request; bigger input is split at "
                                      "newlines.")
@click.option("--max-concurrent-requests", default=32, type=click.IntRange(min=1),
              show_default=True, help="Requests in flight at once.")
@click.option("-q", "--quiet", is_flag=True, help="No progress report on stderr.")
@click.option("--write-host", envvar="INFLUXDB3_WRITE_HOST_URL", default=None, metavar="URL",
              help="Send writes to this URL instead of --host.")
@click.argument("line_protocol", nargs=-1)
@client_options
def write(client: Client, database: str, file: str | None, precision: str | None,
          accept_partial: bool | None, no_sync: bool, use_gzip: bool, max_request_size: int,
          max_concurrent_requests: int, quiet: bool, write_host: str | None,
          line_protocol: tuple[str, ...]) -> None:
    """Write line protocol to a database: given as an argument, with --file, or on stdin.
    A progress report goes to stderr."""
    if max_request_size < 1:
        raise click.BadParameter("value must be at least 1", param_hint="'--max-request-size'")
    client = client.with_host(write_host)
    params: dict[str, str] = {"db": database}
    if precision is not None:
        params["precision"] = PRECISIONS[precision]
    if accept_partial is not None:
        params["accept_partial"] = str(accept_partial).lower()
    if no_sync:
        params["no_sync"] = "true"
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if use_gzip:
        headers["Content-Encoding"] = "gzip"

    stream, owned = _open_input(line_protocol, file, "line protocol")
    total = None
    if file is not None:
        try:
            total = Path(file).expanduser().stat().st_size
        except OSError:
            total = None
    progress = WriteProgress(quiet, total)

    def send(chunk: bytes) -> httpx.Response:
        body = gzip.compress(chunk) if use_gzip else chunk
        return client.request("POST", "/api/v3/write_lp", params=params, content=body,
                              headers=headers)

    in_flight: dict[Future[httpx.Response], bytes] = {}

    def collect(done: set[Future[httpx.Response]]) -> None:
        for fut in done:
            chunk = in_flight.pop(fut)
            r = fut.result()  # raises RequestError if the request could not be sent
            if r.status_code >= 400:
                before = (f" ({progress.requests} earlier requests, {progress.lines} lines, "
                          "were written)" if progress.requests else "")
                if not quiet and progress.tty and progress.requests:
                    click.echo("", err=True)
                fail(f"Failed to write: {describe_error(r)}{before}")
            progress.add(chunk)

    pool = ThreadPoolExecutor(max_workers=max_concurrent_requests)
    try:
        for chunk in iter_chunks(stream, max_request_size):
            if not chunk.strip():
                continue
            if len(in_flight) >= max_concurrent_requests:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                collect(done)
            in_flight[pool.submit(send, chunk)] = chunk
        while in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            collect(done)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if owned:
            stream.close()
    progress.finish()


# ---- query --------------------------------------------------------------------------------


@click.command("query", cls=WeirCommand, example=[
    "influxdb3 query --database mydb 'SELECT * FROM cpu ORDER BY time DESC LIMIT 10'",
    "influxdb3 query --database mydb --language influxql 'SHOW MEASUREMENTS'",
    "influxdb3 query --database mydb --format parquet -o cpu.parquet 'SELECT * FROM cpu'",
])
@database_option()
@click.option("-l", "--language", type=click.Choice(["sql", "influxql"]), default="sql",
              show_default=True, help="Query language.")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="pretty", show_default=True,
              help="Output format (parquet needs --output or a pipe).")
@click.option("-o", "--output", default=None, metavar="FILE", help="Write the result here.")
@click.option("-f", "--file", "file", default=None, metavar="FILE",
              help="Read the query from this file.")
@click.option("--query-host", envvar="INFLUXDB3_QUERY_HOST_URL", default=None, metavar="URL",
              help="Send the query to this URL instead of --host.")
@click.argument("query_text", nargs=-1, metavar="[QUERY]")
@client_options
def query(client: Client, database: str, language: str, fmt: str, output: str | None,
          file: str | None, query_host: str | None, query_text: tuple[str, ...]) -> None:
    """Run a SQL (or InfluxQL) query given as an argument, with --file, or on stdin, and
    print the result."""
    if fmt == "parquet" and output is None and stdout_is_tty():
        fail("error: cannot write parquet to a terminal, use `--output <file>` or pipe the "
             "output", 2)
    stream, owned = _open_input(query_text, file, "query")
    try:
        q = stream.read().decode("utf-8")
    except UnicodeDecodeError:
        fail("error: the query is not UTF-8 text", 2)
    finally:
        if owned:
            stream.close()
    if not q.strip():
        fail("error: the query is empty", 2)
    client = client.with_host(query_host)
    path = "/api/v3/query_sql" if language == "sql" else "/api/v3/query_influxql"
    body: dict[str, Any] = {"db": database, "q": q, "format": WIRE_FORMAT[fmt],
                            "params": None}
    r = client.ok("POST", path, "Failed to run query", json_body=body)
    if output is not None:
        try:
            Path(output).expanduser().write_bytes(r.content)
        except OSError as e:
            fail(f"error: cannot write {output}: {e.strerror or e}")
        return
    if fmt == "parquet":
        out = click.open_file("-", "wb")
        out.write(r.content)
        out.flush()
        return
    text = r.content.decode("utf-8", "replace")
    click.echo(text, nl=not text.endswith("\n"))

"""
{
    "plugin_type": ["scheduled", "onwrite"],
    "description": "Replicates data from this InfluxDB 3 / Weir server to a remote one over the v3 write API, with table/field filtering, renaming, downsampling and a durable gzip JSONL delivery queue.",
    "docs_file_link": "README.md"
}

Data replicator: copies rows of the local database to a remote InfluxDB 3 (or Weir)
server through `POST /api/v3/write_lp`.

* Scheduled triggers (`every:` / `cron:`) replicate the time window
  `[call_time - offset - window, call_time - offset)` of the chosen tables; if an
  earlier window was not replicated (the server was down, the queue was full) the
  run catches up from where the last one stopped, so windows never overlap or leave
  gaps.
* Data-write triggers (`all_tables` / `table:<name>`) replicate the rows of each WAL
  flush.

Every line is appended to a gzip-compressed JSONL queue file (fsynced) before it is
sent, and is taken off the queue only after the remote acknowledged it with a 2xx.
What the remote did not take stays queued for the next run. See README.md for every
argument and for the queue file's format.

Only the Python standard library is used.
"""

import contextlib
import email.utils
import fcntl
import gzip
import hashlib
import http.client
import json
import math
import os
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from array import array
from bisect import bisect_right
from datetime import UTC, datetime, timedelta

NS = 1_000_000_000
WRITES_QUEUE = "edr_queue_writes.jsonl.gz"
SCHEDULE_QUEUE = "edr_queue_schedule.jsonl.gz"
MIB = 1024 * 1024

CHUNK_LINES = 10_000            # lines per HTTP write request (at most)
CHUNK_BYTES = 4 * MIB           # ... and at most this much line protocol
HTTP_TIMEOUT = 30.0             # seconds per HTTP request
BACKOFF_BASE = 0.5              # first retry after 0.5 s, then 1, 2, 4 ... (capped)
BACKOFF_MAX = 30.0
RETRY_AFTER_MAX_WAIT = 30.0     # a longer Retry-After ends the run (lines stay queued)
FLUSH_BUDGET = 120.0            # seconds one run may spend sending
CATCHUP_MAX_LINES = 200_000     # scheduled mode: lines one run may queue while catching up
CATCHUP_QUERY_WINDOWS = 100     # scheduled mode: windows per query while catching up
CLOSE_GRACE_NS = 2 * NS         # aggregate_interval: a bucket is sent this long after it ends
COMPACT_MEMBER_RECORDS = 20_000

TAG, FLOAT, INT, UINT, BOOL, STR = "tag", "float", "int", "uint", "bool", "str"
_ARROW_KINDS = {"Float64": FLOAT, "Int64": INT, "UInt64": UINT, "Boolean": BOOL,
                "Utf8": STR, "LargeUtf8": STR, "Utf8View": STR}
_GZIP_MAGIC = b"\x1f\x8b\x08"


class ConfigError(ValueError):
    """A malformed or missing trigger argument (the run fails before doing anything)."""


# ====================================================================================
# Arguments
# ====================================================================================

_COMMON_ARGS = ("host", "token", "database", "tables", "excluded_fields", "tables_rename",
                "field_renames", "max_size", "max_retries", "verify_ssl", "port_override")
_SCHEDULE_ARGS = ("source_measurement", "window", "offset", "downsample")
_WRITES_ARGS = ("aggregate_interval",)
_DURATION_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_RESERVED = ".:@$"


def _duration_ns(name, raw, *, allow_zero=False):
    m = re.fullmatch(r"(\d+)([a-z]+)", raw.strip())
    if raw.strip() == "0" and allow_zero:
        return 0
    if m and m.group(2) in _DURATION_UNITS and int(m.group(1)) >= 1:
        return int(m.group(1)) * _DURATION_UNITS[m.group(2)] * NS
    zero = " (or 0)" if allow_zero else ""
    raise ConfigError(f"invalid {name}={raw!r}: expected <number><unit>{zero} with a whole "
                      "number >= 1 and a unit among s, min (or m), h, d, w, e.g. 10min")


def _int_arg(name, raw, low, high=None, what=""):
    text = raw.strip()
    if re.fullmatch(r"\d+", text) and int(text) >= low and (high is None or int(text) <= high):
        return int(text)
    bound = f"between {low} and {high}" if high is not None else f">= {low}"
    raise ConfigError(f"invalid {name}={raw!r}: expected a whole number {bound}{what}")


def _bool_arg(name, raw):
    text = raw.strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise ConfigError(f"invalid {name}={raw!r}: expected true or false")


def _name(arg, raw, part, example):
    """One table or field name inside a structured argument."""
    name = part.strip()
    if not name or any(c in name for c in _RESERVED):
        raise ConfigError(f"invalid {arg}={raw!r}: {part!r} is not a valid name (names are "
                          f"non-empty and cannot contain . : @ $); expected e.g. {example}")
    return name


def _table_list(arg, raw):
    example = "table1.table2"
    return [_name(arg, raw, p, example) for p in raw.split(".")]


def _excluded_fields(raw):
    arg, example = "excluded_fields", "table1:field1@field2.table2:field3"
    out = {}
    for block in raw.split("."):
        table, sep, fields = block.partition(":")
        if not sep or not fields.strip():
            raise ConfigError(f"invalid {arg}={raw!r}: segment {block!r} is not "
                              f"<table>:<field>[@<field>...]; expected e.g. {example}")
        table = _name(arg, raw, table, example)
        for f in fields.split("@"):
            f = _name(arg, raw, f, example)
            if f == "time":
                raise ConfigError(f"invalid {arg}={raw!r}: the time column cannot be excluded")
            out.setdefault(table, set()).add(f)
    return out


def _tables_rename(raw):
    arg, example = "tables_rename", "old_table1:new_table1.old_table2:new_table2"
    out = {}
    for block in raw.split("."):
        old, sep, new = block.partition(":")
        if not sep:
            raise ConfigError(f"invalid {arg}={raw!r}: segment {block!r} is not "
                              f"<old_table>:<new_table>; expected e.g. {example}")
        old, new = _name(arg, raw, old, example), _name(arg, raw, new, example)
        if out.get(old, new) != new:
            raise ConfigError(f"invalid {arg}={raw!r}: table {old!r} is renamed twice")
        out[old] = new
    return out


def _field_renames(raw):
    arg, example = "field_renames", "table1:oldA@newA$oldB@newB.table2:oldX@newX"
    out = {}
    for block in raw.split("."):
        table, sep, pairs = block.partition(":")
        if not sep or not pairs.strip():
            raise ConfigError(f"invalid {arg}={raw!r}: segment {block!r} is not "
                              f"<table>:<old>@<new>[$<old>@<new>...]; expected e.g. {example}")
        table = _name(arg, raw, table, example)
        mapping = out.setdefault(table, {})
        for pair in pairs.split("$"):
            old, sep, new = pair.partition("@")
            if not sep:
                raise ConfigError(f"invalid {arg}={raw!r}: {pair!r} in table {table!r} is not "
                                  f"<old>@<new>; expected e.g. {example}")
            old, new = _name(arg, raw, old, example), _name(arg, raw, new, example)
            if "time" in (old, new):
                raise ConfigError(f"invalid {arg}={raw!r}: the time column cannot be renamed")
            if old in mapping:
                raise ConfigError(f"invalid {arg}={raw!r}: field {old!r} of table {table!r} "
                                  "is renamed twice")
            if new in mapping.values():
                raise ConfigError(f"invalid {arg}={raw!r}: two fields of table {table!r} "
                                  f"would both be named {new!r}")
            mapping[old] = new
    return out


def parse_host(raw, port_override=None):
    """`host` (with or without scheme, port or path prefix) -> base URL
    `scheme://host:port[/prefix]`. Without a scheme, http is used; without a port,
    `port_override`, else 443 for https and 8181 (InfluxDB 3's port) for http."""
    expected = ("expected a host name or address, optionally with http:// or https:// "
                "and :port, e.g. https://replica.example.com or 10.0.0.5")
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    if "://" in text:
        scheme, rest = text.split("://", 1)
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise ConfigError(f"invalid host={raw!r}: unsupported scheme {scheme!r}; {expected}")
    else:
        scheme, rest = "http", text
    if any(c in rest for c in "?# ") or not rest:
        raise ConfigError(f"invalid host={raw!r}: {expected}")
    hostport, _, prefix = rest.partition("/")
    if hostport.count(":") > 1 and not hostport.startswith("["):
        hostport = f"[{hostport}]"  # a bare IPv6 address
    parts = urllib.parse.urlsplit(f"{scheme}://{hostport}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"invalid host={raw!r}: bad port; {expected}") from None
    hostname = parts.hostname
    if not hostname:
        raise ConfigError(f"invalid host={raw!r}: no host name; {expected}")
    port = port_override or port or (443 if scheme == "https" else 8181)
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    prefix = prefix.strip("/")
    return f"{scheme}://{netloc}:{port}" + (f"/{prefix}" if prefix else "")


class Config:
    """Validated trigger arguments."""

    def __init__(self, args, mode):
        self.mode = mode
        args = dict(args or {})
        allowed = set(_COMMON_ARGS) | set(_SCHEDULE_ARGS if mode == "schedule" else _WRITES_ARGS)
        for key in args:
            if key in allowed:
                continue
            if key in _SCHEDULE_ARGS:
                raise ConfigError(f"argument {key!r} applies to scheduled triggers (every:/cron:)"
                                  " only; data-write triggers downsample with aggregate_interval")
            if key in _WRITES_ARGS:
                raise ConfigError(f"argument {key!r} applies to data-write triggers only; "
                                  "scheduled triggers downsample each window with downsample=true")
            raise ConfigError(f"unknown argument {key!r}; expected one of "
                              f"{', '.join(sorted(allowed))}")
        for key in ("host", "database"):
            if not (args.get(key) or "").strip():
                raise ConfigError(f"missing required argument {key!r}")
        token = (args.get("token") or "").strip() or os.environ.get("REMOTE_INFLUXDB_TOKEN", "")
        if not token:
            raise ConfigError("missing required argument 'token' (the remote API token; it may "
                              "instead come from the REMOTE_INFLUXDB_TOKEN environment variable)")
        self.token = token
        self.database = args["database"].strip()
        if any(c.isspace() for c in self.database) or "/" in self.database:
            raise ConfigError(f"invalid database={args['database']!r}: expected a database name")
        port = None
        if args.get("port_override") is not None:
            port = _int_arg("port_override", args["port_override"], 1, 65535, " (a TCP port)")
        self.base_url = parse_host(args["host"], port)
        self.verify_ssl = _bool_arg("verify_ssl", args.get("verify_ssl", "true"))
        self.max_size = _int_arg("max_size", args.get("max_size", "1024"), 1,
                                 what=" (megabytes)")
        self.max_retries = _int_arg("max_retries", args.get("max_retries", "3"), 0)
        tables = []
        for key in ("source_measurement", "tables"):
            if args.get(key) is not None:
                tables += [t for t in _table_list(key, args[key]) if t not in tables]
        self.tables = tables or None
        self.excluded = _excluded_fields(args["excluded_fields"]) \
            if args.get("excluded_fields") is not None else {}
        self.tables_rename = _tables_rename(args["tables_rename"]) \
            if args.get("tables_rename") is not None else {}
        self.field_renames = _field_renames(args["field_renames"]) \
            if args.get("field_renames") is not None else {}
        for table, names in self.excluded.items():
            clash = names & set(self.field_renames.get(table, {}))
            if clash:
                raise ConfigError(f"field {min(clash)!r} of table {table!r} is both "
                                  "excluded (excluded_fields) and renamed (field_renames)")
        self.window = self.offset = self.aggregate = None
        self.downsample = False
        if mode == "schedule":
            if not self.tables:
                raise ConfigError("missing required argument 'source_measurement' (or 'tables'):"
                                  " the table(s) to replicate, e.g. source_measurement=cpu")
            if args.get("window") is None:
                raise ConfigError("missing required argument 'window' (the time window each run "
                                  "replicates, e.g. window=10s)")
            self.window = _duration_ns("window", args["window"])
            self.offset = _duration_ns("offset", args.get("offset", "0"), allow_zero=True)
            self.downsample = _bool_arg("downsample", args.get("downsample", "false"))
        elif args.get("aggregate_interval") is not None:
            self.aggregate = _duration_ns("aggregate_interval", args["aggregate_interval"])
        self.dest = f"{self.base_url}/{self.database}"

    def wants(self, table):
        return self.tables is None or table in self.tables


# ====================================================================================
# Line protocol
# ====================================================================================

def _esc_measurement(s):
    return s.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def _esc_key(s):
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _esc_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _kind_of_value(v):
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, int):
        return INT
    if isinstance(v, float):
        return FLOAT
    return STR


def table_schema(local, table, columns=None):
    """{column: kind} for a local table (tags vs. field types), cached for 5 minutes
    and re-read when a row has a column the cached copy lacks."""
    key = f"edr_schema:{table}"
    cached = local.cache.get(key)
    if cached is not None and (columns is None or all(c in cached for c in columns)):
        return cached
    rows = local.query("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'iox' AND table_name = $t", {"t": table})
    schema = {}
    for r in rows:
        name, dtype = r["column_name"], str(r["data_type"])
        if name == "time":
            continue
        if dtype.startswith("Dictionary("):
            schema[name] = TAG
        elif dtype in _ARROW_KINDS:
            schema[name] = _ARROW_KINDS[dtype]
    local.cache.put(key, schema, 300)
    return schema


class Encoder:
    """Rows of one local table -> line protocol for the remote, applying the table
    rename, field exclusions and field renames."""

    _TAG_CACHE_MAX = 100_000

    def __init__(self, cfg, table, schema):
        self.table = table
        self.prefix = _esc_measurement(cfg.tables_rename.get(table, table))
        self.schema = schema
        self.excluded = cfg.excluded.get(table, set())
        self.renames = cfg.field_renames.get(table, {})
        self.cols = {"time": False}    # column -> (kind, "escaped_key=") or False (skip)
        self.tags = {}                 # (column, value) -> "key=value" (escaped)
        self.skipped_empty = self.skipped_newline = self.dropped_nonfinite = 0

    def spec(self, col, value):
        s = self.cols.get(col)
        if s is None:
            if col in self.excluded:
                s = False
            else:
                kind = self.schema.get(col) or _kind_of_value(value)
                s = (kind, _esc_key(self.renames.get(col, col)) + "=")
            self.cols[col] = s
        return s

    def _tag(self, col, key, v):
        v = str(v)
        if "\n" in v:
            return None
        text = key + _esc_key(v) if v else ""
        if len(self.tags) >= self._TAG_CACHE_MAX:
            self.tags.clear()
        self.tags[(col, v)] = text
        return text

    def encode(self, row):
        tags = []
        fields = []
        cols = self.cols
        tag_cache = self.tags
        for col, v in row.items():
            if v is None:
                continue
            s = cols.get(col)
            if not s:
                if s is False:
                    continue
                s = self.spec(col, v)
                if not s:
                    continue
            kind, key = s
            if kind == FLOAT:
                if v - v == 0:   # finite (inf - inf and nan - nan are nan)
                    fields.append(f"{key}{float(v)!r}")
                else:
                    self.dropped_nonfinite += 1
            elif kind == TAG:
                text = tag_cache.get((col, v))
                if text is None:
                    text = self._tag(col, key, v)
                    if text is None:
                        self.skipped_newline += 1
                        return None
                if text:
                    tags.append(text)
            elif kind == INT:
                fields.append(f"{key}{int(v)}i")
            elif kind == UINT:
                fields.append(f"{key}{int(v)}u")
            elif kind == BOOL:
                fields.append(key + ("true" if v else "false"))
            else:
                v = str(v)
                if "\n" in v:
                    self.skipped_newline += 1
                    return None
                fields.append(key + _esc_str(v))
        t = row.get("time")
        if not fields or t is None:
            self.skipped_empty += 1
            return None
        if tags:
            tags.sort()
            return f"{self.prefix},{','.join(tags)} {','.join(fields)} {int(t)}"
        return f"{self.prefix} {','.join(fields)} {int(t)}"

    def report(self, log):
        if self.skipped_empty:
            log.info(f"Skipped {self.skipped_empty} rows of table {self.table}: no fields "
                     "left after exclusions")
        if self.skipped_newline:
            log.warn(f"Skipped {self.skipped_newline} rows of table {self.table}: a value "
                     "contains a newline, which line protocol cannot carry")
        if self.dropped_nonfinite:
            log.warn(f"Dropped {self.dropped_nonfinite} NaN/infinite float values of table "
                     f"{self.table}: line protocol cannot carry them")


def aggregate_rows(enc, rows, bucket_of):
    """Downsample: one row per (tag set, bucket). Floats -> mean; integers -> mean
    rounded to the nearest integer (the column keeps its type); booleans and strings ->
    the last value by time. Tags excluded by `excluded_fields` do not split groups.
    Returns rows (dicts of source column names) stamped with their bucket's start."""
    groups = {}
    for row in rows:
        t = row.get("time")
        if t is None:
            continue
        tags = []
        values = []
        for col, v in row.items():
            if v is None or col == "time":
                continue
            s = enc.spec(col, v)
            if not s:
                continue
            if s[0] == TAG:
                tags.append((col, str(v)))
            else:
                values.append((col, s[0], v))
        tags.sort()
        key = (tuple(tags), bucket_of(t))
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = {}
        for col, kind, v in values:
            a = acc.get(col)
            if kind in (FLOAT, INT, UINT):
                if kind == FLOAT:
                    v = float(v)
                    if v != v or v in (math.inf, -math.inf):
                        continue
                if a is None:
                    acc[col] = [kind, v, 1]
                else:
                    a[1] += v
                    a[2] += 1
            elif a is None or t >= a[1]:
                acc[col] = [kind, t, v]
    out = []
    for (tags, bucket), acc in groups.items():
        row = dict(tags)
        for col, a in acc.items():
            if a[0] == FLOAT:
                row[col] = a[1] / a[2]
            elif a[0] in (INT, UINT):
                q, r = divmod(a[1], a[2])
                row[col] = q + (1 if 2 * r >= a[2] else 0)
            else:
                row[col] = a[2]
        row["time"] = bucket
        out.append(row)
    out.sort(key=lambda r: r["time"])
    return out


def _ts_literal(ns):
    secs, frac = divmod(ns, NS)
    base = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=secs)
    return base.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def _quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def query_range(local, table, start, end):
    """Every local row of `table` with `start <= time < end` (ns)."""
    return local.query(f"SELECT * FROM {_quote_ident(table)} WHERE time >= "
                       f"'{_ts_literal(start)}' AND time < '{_ts_literal(end)}'")


def local_tables(local):
    rows = local.query("SELECT table_name FROM information_schema.tables "
                       "WHERE table_schema = 'iox'")
    return {r["table_name"] for r in rows}


# ====================================================================================
# The queue file
# ====================================================================================

_LINE_RE = re.compile(r'\{"seq": (\d+), "dest": ("(?:[^"\\]|\\.)*")')


def _iter_members(f, start=0):
    """Yield ("ok", start, end, data) for each complete gzip member of an open file
    (from byte `start`), ("bad", start, end, reason) for unreadable byte ranges
    (resynchronising on the next gzip header), and ("torn", start, end, reason) for a
    truncated last member."""
    pos = start
    f.seek(start)
    buf = f.read(MIB)
    while buf:
        d = zlib.decompressobj(31)
        out = []
        fed = 0
        chunk = buf
        error = None
        try:
            while True:
                out.append(d.decompress(chunk))
                fed += len(chunk)
                if d.eof:
                    break
                chunk = f.read(MIB)
                if not chunk:
                    yield ("torn", pos, pos + fed, "truncated gzip member (an append was cut short)")
                    return
        except zlib.error as e:
            error = str(e)
        if error is None:
            rest = d.unused_data
            end = pos + fed - len(rest)
            yield ("ok", pos, end, b"".join(out))
            pos, buf = end, rest
            if len(buf) < 64:
                buf += f.read(MIB)
            continue
        # resynchronise on the next gzip header after `pos`
        f.seek(pos + 1)
        scan_pos = pos + 1
        tail = b""
        found = None
        while found is None:
            block = f.read(MIB)
            if not block:
                break
            data = tail + block
            i = data.find(_GZIP_MAGIC)
            if i >= 0:
                found = scan_pos - len(tail) + i
            else:
                tail = data[-2:]
                scan_pos += len(block)
        end = found if found is not None else f.seek(0, os.SEEK_END)
        yield ("bad", pos, end, error)
        if found is None:
            return
        f.seek(found)
        pos, buf = found, f.read(MIB)


def _records(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return [r for r in text.split("\n") if r]


class Queue:
    """The queue file (append-only gzip members of JSONL records) and its locks.

    Records: `{"seq": n, "dest": url/db, "table": source table, "line": lp}` (one line
    to deliver), `{"ack": {"dest": d, "through": n}}` (every line for `d` with seq <= n
    was delivered), `{"state": {key: value}}` (replicator bookkeeping; later keys win,
    null deletes). Each append is one gzip member written with one write and fsynced,
    so lines and the state that goes with them land together or not at all.

    Triggers that share the plugin directory share the file. `locked()` (a short-held
    lock) guards reading and changing it; `send_locked(dest)` makes one run at a time
    deliver a destination's lines, without holding up other destinations."""

    def __init__(self, directory, name, log):
        self.dir = directory
        self.path = os.path.join(directory, name)
        self.log = log
        self.state = {}
        self.acked = {}
        self.seqs = {}          # dest -> array of queued seqs (in order)
        self.next_seq = 1
        self.size = 0
        self.meta_records = 0
        self._file_id = None     # (device, inode) of the file last read
        self._dests = {}         # JSON-encoded dest -> dest
        self.recent = {}         # dest -> {seq: (table, line)} appended by this run

    @contextlib.contextmanager
    def _flock(self, path):
        os.makedirs(self.dir, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self
        finally:
            os.close(fd)  # releases the lock

    def locked(self):
        return self._flock(self.path + ".lock")

    def send_locked(self, dest):
        digest = hashlib.sha1(dest.encode("utf-8")).hexdigest()[:12]
        return self._flock(f"{self.path}.send-{digest}.lock")

    # ---- reading ---------------------------------------------------------------------

    def load(self):
        """Read the file: state, acks, queued seqs. When it is the file read last time,
        grown by appends, only the new part is read. A corrupt file is moved aside (kept
        for inspection) and replaced by everything that could be read from it."""
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - `with f` below; this try is for open()
        except FileNotFoundError:
            self._reset()
            return
        with f:
            st = os.fstat(f.fileno())
            file_id = (st.st_dev, st.st_ino)
            if file_id == self._file_id and st.st_size >= self.size:
                start = self.size
            else:
                self._reset()
                start = 0
            self._file_id = file_id
            if start == st.st_size:
                return
            if not self._read(f, start) and start:
                self._reset()  # a damaged tail: read (and repair) the whole file
                self._read(f, 0)

    def _reset(self):
        self.state, self.acked, self.seqs, self.next_seq, self.size = {}, {}, {}, 1, 0
        self.meta_records = 0
        self._file_id = None

    def _read(self, f, start):
        """Apply the records from byte `start`; False if damage was found (and, when
        reading from the start, repaired)."""
        problems = []
        salvaged = []
        for kind, begin, end, data in _iter_members(f, start):
            if kind != "ok":
                problems.append(f"bytes {begin}-{end}: {data}")
                continue
            recs = _records(data)
            if recs is None:
                problems.append(f"bytes {begin}-{end}: not UTF-8")
                continue
            for rec in recs:
                if self._apply(rec):
                    salvaged.append(rec)
                else:
                    problems.append(f"bytes {begin}-{end}: unreadable record {rec[:60]!r}")
        self.size = f.seek(0, os.SEEK_END)
        if problems and start == 0:
            self._repair(problems, salvaged)
        return not problems

    def _dest(self, raw):
        d = self._dests.get(raw)
        if d is None:
            d = self._dests[raw] = json.loads(raw)
        return d

    def _apply(self, rec):
        m = _LINE_RE.match(rec)
        if m:
            seq, dest = int(m.group(1)), self._dest(m.group(2))
        else:
            try:
                obj = json.loads(rec)
            except ValueError:
                return False
            if not isinstance(obj, dict):
                return False
            if "line" in obj:
                seq, dest = obj.get("seq"), obj.get("dest")
                if not isinstance(seq, int) or not isinstance(dest, str) or \
                        not isinstance(obj["line"], str):
                    return False
            elif isinstance(obj.get("ack"), dict):
                a = obj["ack"]
                if not isinstance(a.get("through"), int) or not isinstance(a.get("dest"), str):
                    return False
                d, n = a["dest"], a["through"]
                self.acked[d] = max(self.acked.get(d, 0), n)
                self.next_seq = max(self.next_seq, n + 1)
                self.meta_records += 1
                return True
            elif isinstance(obj.get("state"), dict):
                for k, v in obj["state"].items():
                    if v is None:
                        self.state.pop(k, None)
                    else:
                        self.state[k] = v
                self.meta_records += 1
                return True
            else:
                return False
        arr = self.seqs.get(dest)
        if arr is None:
            arr = self.seqs[dest] = array("q")
        arr.append(seq)
        self.next_seq = max(self.next_seq, seq + 1)
        return True

    def _repair(self, problems, salvaged):
        aside = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
        os.replace(self.path, aside)
        kept = sum(1 for r in salvaged if _LINE_RE.match(r))
        more = "; ..." if len(problems) > 3 else ""
        self.log.error(f"Queue file {self.path} is corrupt ({'; '.join(problems[:3])}{more}): "
                       f"moved it to {aside} and kept the {kept} queued lines and the "
                       "bookkeeping that could be read")
        # keep the unacknowledged lines in order, renumbered after every ack (the damaged
        # file's numbering cannot be trusted), then the bookkeeping
        floor = max(self.acked.values(), default=0)
        out = []
        for rec in salvaged:
            m = _LINE_RE.match(rec)
            if m is None:
                continue
            if int(m.group(1)) <= self.acked.get(json.loads(m.group(2)), 0):
                continue
            obj = json.loads(rec)
            floor += 1
            obj["seq"] = floor
            out.append(json.dumps(obj))
        if self.state:
            out.append(json.dumps({"state": self.state}))
        out += [json.dumps({"ack": {"dest": d, "through": n}}) for d, n in self.acked.items()]
        self.recent = {}
        self._rewrite(out)
        self._reset()
        self.load()

    def unacked(self, dest):
        arr = self.seqs.get(dest)
        if not arr:
            return 0
        return len(arr) - bisect_right(arr, self.acked.get(dest, 0))

    def total_lines(self):
        return sum(len(a) for a in self.seqs.values())

    def total_unacked(self):
        return sum(self.unacked(d) for d in self.seqs)

    def iter_unacked(self, dest):
        """(seq, table, line) for each queued line of `dest` not yet acknowledged."""
        if not self.unacked(dest):
            return
        acked = self.acked.get(dest, 0)
        arr = self.seqs[dest]
        todo = arr[bisect_right(arr, acked):]
        recent = self.recent.get(dest, {})
        if all(seq in recent for seq in todo):   # all queued by this run: no need to read
            for seq in todo:
                table, line = recent[seq]
                yield seq, table, line
            return
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - `with f` below; this try is for open()
        except FileNotFoundError:
            return
        with f:
            for kind, _s, _e, data in _iter_members(f):
                if kind != "ok":
                    continue
                for rec in _records(data) or ():
                    m = _LINE_RE.match(rec)
                    if not m or int(m.group(1)) <= acked or self._dest(m.group(2)) != dest:
                        continue
                    try:
                        obj = json.loads(rec)
                    except ValueError:
                        continue
                    yield obj["seq"], obj.get("table", ""), obj["line"]

    # ---- writing ---------------------------------------------------------------------

    def _fsync_dir(self):
        try:
            fd = os.open(self.dir, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def append(self, records, max_bytes=None):
        """Append records (JSON texts) as one fsynced gzip member. With `max_bytes`,
        refuse (return False, writing nothing) if the file would grow past it."""
        if not records:
            return True
        member = gzip.compress(("\n".join(records) + "\n").encode("utf-8"), compresslevel=1)
        if max_bytes is not None and self.size + len(member) > max_bytes:
            return False
        created = not os.path.exists(self.path)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(member)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            self._fsync_dir()
        if created:
            st = os.stat(self.path)
            self._file_id, self.size = (st.st_dev, st.st_ino), 0
        self.size += len(member)
        for rec in records:
            self._apply(rec)
        return True

    def add_lines(self, dest, items, state=None, max_bytes=None):
        """Queue `items` [(table, line)] for `dest` together with a state update."""
        seq = first = self.next_seq
        recs = []
        head = ', "dest": ' + json.dumps(dest) + ', "table": '
        tables = {}
        dumps = json.dumps
        for table, line in items:
            t = tables.get(table)
            if t is None:
                t = tables[table] = dumps(table) + ', "line": '
            # the same text as json.dumps({"seq": .., "dest": .., "table": .., "line": ..})
            recs.append(f'{{"seq": {seq}{head}{t}{dumps(line)}}}')
            seq += 1
        if state:
            recs.append(json.dumps({"state": state}))
        if not self.append(recs, max_bytes):
            return False
        if items:
            recent = self.recent.setdefault(dest, {})
            for i, (table, line) in enumerate(items):
                recent[first + i] = (table, line)
        return True

    def ack(self, dest, through):
        self.append([json.dumps({"ack": {"dest": dest, "through": through}})])

    def _rewrite(self, records):
        """Atomically replace the file with `records` (or remove it if there are none)."""
        if not records:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self._fsync_dir()
            return
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as out:
            for i in range(0, len(records), COMPACT_MEMBER_RECORDS):
                part = records[i:i + COMPACT_MEMBER_RECORDS]
                out.write(gzip.compress(("\n".join(part) + "\n").encode("utf-8"),
                                        compresslevel=1))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        self._fsync_dir()

    def compact(self):
        """Drop delivered lines and old bookkeeping records when that pays off: when
        at least half the lines (or all) were delivered, or bookkeeping piled up."""
        total = self.total_lines()
        done = total - self.total_unacked()
        if not (done and done * 2 >= total) and self.meta_records < 64:
            return
        keep = []
        if self.total_unacked():
            try:
                f = open(self.path, "rb")  # noqa: SIM115 - `with f` below; this try is for open()
            except FileNotFoundError:
                return
            with f:
                for kind, _s, _e, data in _iter_members(f):
                    if kind != "ok":
                        continue
                    for rec in _records(data) or ():
                        m = _LINE_RE.match(rec)
                        if m and int(m.group(1)) > self.acked.get(self._dest(m.group(2)), 0):
                            keep.append(rec)
        if keep or self.state:
            if self.state:
                keep.append(json.dumps({"state": self.state}))
            for dest, through in sorted(self.acked.items()):
                keep.append(json.dumps({"ack": {"dest": dest, "through": through}}))
        self._rewrite(keep)
        self._reset()
        self.load()


# ====================================================================================
# Sending
# ====================================================================================

class SendResult:
    def __init__(self, kind, detail="", status=None, retry_after=None, rejected=None):
        self.kind = kind            # ok | rejected | retry | too_large | fatal
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.rejected = rejected or []   # [(line_number, message)]


def _retry_after(value):
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Remote:
    """`POST <base>/api/v3/write_lp?db=<database>&precision=nanosecond`."""

    def __init__(self, cfg):
        self.url = (f"{cfg.base_url}/api/v3/write_lp?"
                    + urllib.parse.urlencode({"db": cfg.database, "precision": "nanosecond"}))
        self.headers = {"Authorization": f"Bearer {cfg.token}",
                        "Content-Type": "text/plain; charset=utf-8",
                        "Content-Encoding": "gzip"}
        handlers = []
        if cfg.base_url.startswith("https://"):
            ctx = ssl.create_default_context()
            if not cfg.verify_ssl:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=ctx))
        self.opener = urllib.request.build_opener(*handlers)

    def write(self, lines):
        body = gzip.compress("\n".join(lines).encode("utf-8"), compresslevel=1)
        req = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with self.opener.open(req, timeout=HTTP_TIMEOUT) as resp:
                resp.read()
                return SendResult("ok", status=resp.status)
        except urllib.error.HTTPError as e:
            try:
                text = e.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException):
                text = ""
            return self._error(e.code, text, e.headers)
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", None) or e
            return SendResult("retry", f"connection failed: {reason}")

    @staticmethod
    def _error(status, text, headers):
        short = text.strip().replace("\n", " ")[:300]
        if status == 429 or status >= 500:
            ra = _retry_after(headers.get("Retry-After") if headers is not None else None)
            return SendResult("retry", f"HTTP {status}: {short}", status, ra)
        if status == 413:
            return SendResult("too_large", f"HTTP 413: {short}", status)
        if status in (400, 422):
            try:
                body = json.loads(text)
            except ValueError:
                body = None
            data = body.get("data") if isinstance(body, dict) else None
            if isinstance(data, dict):
                data = [data]
            if isinstance(data, list) and data and all(
                    isinstance(d, dict) and isinstance(d.get("line_number"), int) for d in data):
                return SendResult("rejected", f"HTTP {status}: {short}", status, rejected=[
                    (d["line_number"], str(d.get("error_message", ""))) for d in data])
        return SendResult("fatal", f"HTTP {status}: {short}", status)


# ====================================================================================
# A run
# ====================================================================================

def _humantime(ns):
    parts = []
    for unit, size in (("h", 3600 * NS), ("m", 60 * NS), ("s", NS), ("ms", 1_000_000),
                       ("us", 1_000), ("ns", 1)):
        v, ns = divmod(ns, size)
        if v:
            parts.append(f"{v}{unit}")
    return " ".join(parts) or "0ns"


class Log:
    def __init__(self, local, task_id):
        self.local = local
        self.tag = f"[{task_id}]"

    def info(self, msg):
        self.local.info(f"{self.tag} {msg}")

    def warn(self, msg):
        self.local.warn(f"{self.tag} {msg}")

    def error(self, msg):
        self.local.error(f"{self.tag} {msg}")


def _plugin_dir():
    return os.environ.get("PLUGIN_DIR") or os.path.expanduser("~/.plugins")


class Replicator:
    def __init__(self, local, cfg, log, queue):
        self.local = local
        self.cfg = cfg
        self.log = log
        self.q = queue
        self.max_bytes = cfg.max_size * MIB
        self.schemas = {}
        self.queued_tables = []
        self.queued = 0
        self.refused = False

    def encoder(self, table, columns=None):
        schema = table_schema(self.local, table, columns)
        return Encoder(self.cfg, table, schema)

    def queue(self, items, state, force=False):
        """Append lines (+ state) unless that would pass max_size (then log, return False)."""
        if self.q.add_lines(self.cfg.dest, items, state, None if force else self.max_bytes):
            if items:
                self.queued += len(items)
                for table, _ in items:
                    if table not in self.queued_tables:
                        self.queued_tables.append(table)
            return True
        self.refused = True
        self.log.error(f"Queue file {self.q.path} is {self.q.size / MIB:.1f} MB; adding "
                       f"{len(items)} lines would exceed max_size={self.cfg.max_size} MB. "
                       "They are not queued now; they will be read again from the local "
                       "database once the queue has drained")
        return False

    def report_queued(self):
        if self.queued:
            self.log.info(f"Queued {self.queued} lines from {','.join(self.queued_tables)}")
            self.queued, self.queued_tables = 0, []

    # ---- scheduled mode --------------------------------------------------------------

    def produce_scheduled(self, call_time):
        cfg = self.cfg
        end = int(call_time.replace(tzinfo=UTC).timestamp()) * NS - cfg.offset
        existing = local_tables(self.local)
        budget = CATCHUP_MAX_LINES
        for table in cfg.tables:
            key = f"sched|{cfg.dest}|{table}"
            start = self.q.state.get(key)
            if start is None:
                start = end - cfg.window
            if start >= end:
                continue
            if table not in existing:
                self.log.info(f"Table {table} does not exist in the local database yet")
                self.queue([], {key: end})
                continue
            if end - start > cfg.window:
                self.log.info(f"Catching up table {table} from {_ts_literal(start)} "
                              f"to {_ts_literal(end)}")
            enc = self.encoder(table)
            # windows end at `end`, `end - window`, ...; the earliest may be shorter
            while start < end and budget > 0:
                n_windows = -(-(end - start) // cfg.window)
                step = min(n_windows, CATCHUP_QUERY_WINDOWS)
                stop = end - (n_windows - step) * cfg.window
                rows = query_range(self.local, table, start, stop)
                if cfg.downsample:
                    def window_start(t, start=start):
                        return max(start, t - (t - end) % cfg.window)
                    rows = aggregate_rows(enc, rows, window_start)
                items = []
                for row in rows:
                    line = enc.encode(row)
                    if line is not None:
                        items.append((table, line))
                if not self.queue(items, {key: stop}):
                    if key not in self.q.state:
                        # remember where this table's replication starts, so that the
                        # next runs catch up from here instead of losing this window
                        self.queue([], {key: start}, force=True)
                    enc.report(self.log)
                    return
                budget -= len(items)
                start = stop
            enc.report(self.log)
            if start < end:
                self.log.info(f"Table {table}: replicated up to {_ts_literal(start)}; the "
                              "rest follows in the next runs")

    # ---- data-write mode -------------------------------------------------------------

    def produce_writes(self, batches, now_ns):
        if self.cfg.aggregate:
            self._produce_aggregated(batches, now_ns)
        else:
            self._produce_raw(batches)

    def _produce_raw(self, batches):
        """Queue each batch row, in one append (a run that fails queues nothing).

        If the queue is full, remember per table the time range to re-read from the
        local database later (`deferred`). It starts just after the newest time queued
        so far for the table (`wm`), so no row already queued is read again; rows older
        than that are queued even past max_size (they cannot be told apart later)."""
        cfg, state, dest = self.cfg, self.q.state, self.cfg.dest
        tables = [key.split("|", 2)[2] for key in state if key.startswith(f"deferred|{dest}|")]
        rows_by_table = {}
        for b in batches or ():
            if cfg.wants(b["table_name"]) and b["rows"]:
                rows_by_table.setdefault(b["table_name"], []).extend(b["rows"])
                if b["table_name"] not in tables:
                    tables.append(b["table_name"])
        plans = []
        items = []
        update = {}
        for table in tables:
            rows = rows_by_table.get(table, [])
            dkey, wkey = f"deferred|{dest}|{table}", f"wm|{dest}|{table}"
            deferred, wm = state.get(dkey), state.get(wkey)
            cols = set()
            for r in rows:
                cols.update(r)
            cols.discard("time")
            enc = self.encoder(table, cols)
            plans.append((table, enc, rows, dkey, wkey, deferred, wm))
            if self.refused:
                continue
            newest = wm
            if deferred is not None:
                lo, hi = deferred
                for row in query_range(self.local, table, lo, hi + 1):
                    line = enc.encode(row)
                    if line is not None:
                        items.append((table, line))
                newest = hi if newest is None else max(newest, hi)
                update[dkey] = None
            for row in rows:
                t = row.get("time")
                if t is None:
                    continue
                if deferred is not None and deferred[0] <= t <= deferred[1]:
                    continue  # it was read again from the database above
                line = enc.encode(row)
                if line is not None:
                    items.append((table, line))
                newest = t if newest is None else max(newest, t)
            if newest != wm:
                update[wkey] = newest
        if not self.refused and self.queue(items, update):
            for plan in plans:
                plan[1].report(self.log)
            return
        # the queue is full: defer what can be read back, queue the rest anyway
        forced = []
        update = {}
        for table, enc, rows, dkey, wkey, deferred, wm in plans:
            times = [r["time"] for r in rows if r.get("time") is not None]
            if deferred is not None:
                lo, hi = deferred
            else:
                lo = (wm + 1) if wm is not None else (min(times) if times else None)
                hi = lo
            if lo is None:
                continue
            late = []
            later = 0
            for row in rows:
                t = row.get("time")
                if t is None:
                    continue
                if t < lo:
                    line = enc.encode(row)
                    if line is not None:
                        late.append((table, line))
                else:
                    later += 1
                    hi = max(hi, t)
            if late:
                self.log.warn(f"Queued {len(late)} out-of-order lines of table {table} past "
                              "max_size (they cannot be told apart when read again)")
                forced += late
            if later and [lo, hi] != deferred:
                update[dkey] = [lo, hi]
                update[wkey] = max(hi, wm) if wm is not None else hi
            if later:
                self.log.error(f"Deferred {later} rows of table {table} (the range from "
                               f"{_ts_literal(lo)} to {_ts_literal(hi)}): they will be "
                               "re-read from the local database once the queue has room")
            enc.report(self.log)
        if forced or update:
            self.queue(forced, update, force=True)

    def _produce_aggregated(self, batches, now_ns):
        """Downsample with aggregate_interval: buckets touched by writes are remembered
        (`pending`) and sent once closed (bucket end + grace has passed), aggregated over
        every local row in the bucket; a bucket touched again later is sent again. One
        append per run (a run that fails queues nothing)."""
        cfg, state, dest = self.cfg, self.q.state, self.cfg.dest
        step = cfg.aggregate
        touched = {}
        for b in batches or ():
            if not cfg.wants(b["table_name"]):
                continue
            s = touched.setdefault(b["table_name"], set())
            for row in b["rows"]:
                t = row.get("time")
                if t is not None:
                    s.add(t - t % step)
        prefix = f"pending|{dest}|"
        tables = [k[len(prefix):] for k in state if k.startswith(prefix)]
        tables += [t for t in touched if t not in tables]
        items = []
        update = {}        # pending buckets once the closed ones are queued
        keep = {}          # pending buckets if nothing can be queued
        for table in tables:
            pkey = f"pending|{dest}|{table}"
            before = sorted(state.get(pkey) or ()) or None
            pending = set(before or ()) | touched.get(table, set())
            closed = sorted(b for b in pending if b + step + CLOSE_GRACE_NS <= now_ns)
            remaining = sorted(pending - set(closed)) or None
            if remaining != before:
                update[pkey] = remaining
            if (sorted(pending) or None) != before:
                keep[pkey] = sorted(pending) or None
            if not closed or self.refused:
                continue
            enc = self.encoder(table)
            ranges = []
            for b in closed:
                if ranges and ranges[-1][1] == b:
                    ranges[-1][1] = b + step
                else:
                    ranges.append([b, b + step])
            for lo, hi in ranges:
                rows = query_range(self.local, table, lo, hi)
                for row in aggregate_rows(enc, rows, lambda t: t - t % step):
                    line = enc.encode(row)
                    if line is not None:
                        items.append((table, line))
            enc.report(self.log)
        if (self.refused or not self.queue(items, update)) and keep:
            self.queue([], keep, force=True)

    # ---- delivery --------------------------------------------------------------------

    def flush(self, remote):
        """Send every queued line of this destination, oldest first, in chunks; ack each
        chunk once the remote answered 2xx. Returns the number of lines delivered."""
        cfg, q, dest, log = self.cfg, self.q, self.cfg.dest, self.log
        total = q.unacked(dest)
        if not total:
            return 0
        nb_key = f"notbefore|{dest}"
        not_before = q.state.get(nb_key)
        if not_before and time.time() < not_before:
            until = datetime.fromtimestamp(not_before, UTC)
            log.info(f"The remote asked to wait until {until:%Y-%m-%d %H:%M:%S} UTC "
                     f"(Retry-After); {total} lines stay queued")
            return 0
        started = time.monotonic()
        retries_left = cfg.max_retries
        attempt = 0
        delivered = rejected = 0
        limit = CHUNK_LINES
        source = q.iter_unacked(dest)
        pending = []     # lines read but not yet delivered: [(seq, table, line)]
        exhausted = False
        stop_reason = None
        while True:
            size = sum(len(x[2]) for x in pending)
            while not exhausted and len(pending) < limit and size < CHUNK_BYTES:
                nxt = next(source, None)
                if nxt is None:
                    exhausted = True
                    break
                pending.append(nxt)
                size += len(nxt[2])
            if not pending:
                break
            chunk = pending[:limit]
            res = remote.write([x[2] for x in chunk])
            if res.kind == "ok":
                with q.locked():
                    q.ack(dest, chunk[-1][0])
                delivered += len(chunk)
                del pending[:len(chunk)]
                attempt = 0
            elif res.kind == "rejected":
                bad = self._dead_letter(chunk, res)
                rejected += bad
                delivered += len(chunk) - bad
                with q.locked():
                    q.ack(dest, chunk[-1][0])
                del pending[:len(chunk)]
            elif res.kind == "too_large":
                if len(chunk) > 1:
                    limit = max(1, len(chunk) // 2)
                    log.warn(f"The remote refused a request as too large; sending {limit} "
                             "lines per request")
                    continue
                res.rejected = [(1, res.detail)]
                bad = self._dead_letter(chunk, res)
                rejected += bad
                with q.locked():
                    q.ack(dest, chunk[-1][0])
                del pending[:len(chunk)]
            elif res.kind == "retry":
                if res.retry_after is not None and (res.retry_after > RETRY_AFTER_MAX_WAIT
                                                    or retries_left <= 0):
                    # honour Retry-After across runs too
                    with q.locked():
                        q.append([json.dumps({"state": {
                            nb_key: time.time() + res.retry_after}})])
                    stop_reason = (f"{res.detail}; the remote asked to retry after "
                                   f"{res.retry_after:g}s")
                    break
                if retries_left <= 0:
                    stop_reason = res.detail
                    break
                delay = res.retry_after if res.retry_after is not None else \
                    min(BACKOFF_MAX, BACKOFF_BASE * 2 ** attempt)
                if time.monotonic() - started + delay > FLUSH_BUDGET:
                    stop_reason = f"{res.detail}; out of time for this run"
                    break
                retries_left -= 1
                attempt += 1
                if res.status == 429:
                    log.warn(f"Rate limit hit (HTTP 429), retrying after {delay:g}s")
                else:
                    log.warn(f"Replication attempt to {cfg.base_url} failed: {res.detail}; "
                             f"retrying in {delay:g}s ({retries_left} retries left)")
                time.sleep(delay)
                continue
            else:
                stop_reason = res.detail
                break
            if time.monotonic() - started > FLUSH_BUDGET:
                stop_reason = "out of time for this run"
                break
        if delivered:
            log.info(f"Replicated {delivered} lines to remote instance")
        if stop_reason:
            left = max(0, total - delivered - rejected)
            log.error(f"Error during replication: {stop_reason}; {left} lines remain queued")
        elif not_before:
            with q.locked():
                q.append([json.dumps({"state": {nb_key: None}})])
        return delivered + rejected

    def _dead_letter(self, chunk, res):
        numbers = {n: msg for n, msg in res.rejected if 1 <= n <= len(chunk)}
        if not numbers:
            numbers = {i + 1: res.detail for i in range(len(chunk))}
        path = self.q.path.replace(".jsonl.gz", "") + ".rejected.jsonl.gz"
        recs = [json.dumps({"dest": self.cfg.dest, "table": chunk[n - 1][1],
                            "line": chunk[n - 1][2], "error": msg,
                            "at": datetime.now(UTC).isoformat()})
                for n, msg in sorted(numbers.items())]
        with open(path, "ab") as f:
            f.write(gzip.compress(("\n".join(recs) + "\n").encode("utf-8")))
            f.flush()
            os.fsync(f.fileno())
        first = min(numbers)
        self.log.error(f"The remote rejected {len(numbers)} of {len(chunk)} lines (first, "
                       f"line {first}: {numbers[first]}); they were written to {path}")
        return len(numbers)


def _run(local, mode, args, call_time=None, batches=None):
    task_id = str(uuid.uuid4())
    started = time.perf_counter_ns()
    log = Log(local, task_id)
    if mode == "schedule":
        log.info(f"Starting execution with scheduled time {call_time:%Y-%m-%d %H:%M:%S} UTC")
    try:
        cfg = Config(args, mode)
    except ConfigError as e:
        log.error(f"Invalid trigger arguments: {e}. Nothing was replicated")
        raise
    log.info("Starting data replication process")
    failed = None
    try:
        name = SCHEDULE_QUEUE if mode == "schedule" else WRITES_QUEUE
        q = Queue(_plugin_dir(), name, log)
        rep = Replicator(local, cfg, log, q)
        remote = Remote(cfg)
        for attempt in range(2):
            try:
                with q.locked():
                    q.load()
                    if attempt:
                        q.compact()  # make room: drop what was just delivered
                    if mode == "schedule":
                        rep.produce_scheduled(call_time)
                    else:
                        rep.produce_writes(batches if attempt == 0 else None, time.time_ns())
            # reading the local data failed: log it, and still deliver what is queued
            except Exception as e:  # noqa: BLE001 - logged; the queue is still delivered
                failed = e
                log.error(f"Error during replication: {type(e).__name__}: {e}")
            rep.report_queued()
            with q.send_locked(cfg.dest):
                with q.locked():
                    q.load()  # what other runs delivered meanwhile
                sent = rep.flush(remote)
            if failed is not None or not rep.refused or not sent:
                break
            rep.refused = False   # the queue drained a bit: try the deferred data again
        with q.locked():
            q.load()
            q.compact()
    except Exception as e:  # noqa: BLE001 - the plugin logs any failure and finishes its call
        log.error(f"Error during replication: {type(e).__name__}: {e}")
    log.info(f"Finished execution in {_humantime(time.perf_counter_ns() - started)}")
    if failed is not None and mode == "writes":
        # nothing of this batch was queued: fail the call, so that a trigger with
        # error_behavior=retry delivers the batch again
        raise failed


def process_writes(influxdb3_local, table_batches, args=None):
    """Data-write trigger (`all_tables` / `table:<name>`): replicate each flush's rows."""
    _run(influxdb3_local, "writes", args, batches=table_batches)


def process_scheduled_call(influxdb3_local, call_time, args=None):
    """Scheduled trigger (`every:` / `cron:`): replicate the window ending at
    `call_time - offset`."""
    _run(influxdb3_local, "schedule", args, call_time=call_time)

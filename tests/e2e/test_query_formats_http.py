"""Every query output format through a real server, from the buffer and from Parquet after
a real snapshot, on production-shaped data (the formats on their own:
tests/unit/query/test_query_formats.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import WeirServer
from support.datagen import CPU, ESCAPED, generate, iso_ns, sql_quote_ident
from support.persisted import SNAPSHOT_EVERY_FLUSH, wait_persisted, write_ok

NS = pa.timestamp("ns")


# ---- through a real server, from the buffer and from Parquet -------------------------------
#
# The same production-shaped rows (near-now nanosecond times, every field type, integers
# beyond 2^53, escaped names) queried in every format, once from the buffer and once from
# Parquet after a real snapshot and a restart. Each answer is checked against the rows
# the generator wrote, and the two modes must answer with the same bytes.

FMT_DATA = generate(seed=1004, hosts=6, regions=4, points_per_series=4, escaped_series=8,
                    boundary_rows=True, now_ns=time.time_ns())
FMT_DB = "formats"
CPU_ORDER = "ORDER BY time, host, region"
CPU_COLS = ["host", "region", "cores", "healthy", "state", "uptime", "usage", "time"]
CPU_SQL = f"SELECT {', '.join(CPU_COLS)} FROM cpu {CPU_ORDER}"
_FMT_ANSWERS: dict[tuple[str, str], tuple[str, bytes]] = {}


@pytest.fixture(scope="module", params=["buffer", "parquet"])
def fmt_srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    mode = request.param
    s = WeirServer(Path(tmp_path_factory.mktemp(f"formats-{mode}")) / "data",
                   extra_args=SNAPSHOT_EVERY_FLUSH if mode == "parquet"
                   else ["--wal-flush-interval", "10ms"])
    s.start()
    write_ok(s, FMT_DB, FMT_DATA.lp())
    if mode == "parquet":
        wait_persisted(s, FMT_DB, {t: len(FMT_DATA.table_rows(t)) for t in FMT_DATA.tables})
        s.restart()
    s.mode = mode  # type: ignore[attr-defined]
    yield s
    s.stop()


def _sql(srv: WeirServer, sql: str, fmt: str) -> bytes:
    r = srv.query(FMT_DB, sql, fmt)
    assert r.status_code == 200, f"{fmt} {sql}: {r.status_code} {r.text[:1000]}"
    mode = srv.mode  # type: ignore[attr-defined]
    # Parquet bytes depend on encodings and page layout, not only on the answer: compare
    # what they decode to (schema with types, and rows)
    answer = r.content
    if fmt == "parquet":
        t = pq.read_table(pa.BufferReader(r.content))
        answer = f"{t.schema}\n{t.to_pylist()}".encode()
    first = _FMT_ANSWERS.setdefault((sql, fmt), (mode, answer))
    if first[0] != mode:
        assert answer == first[1], (
            f"{fmt} answer to {sql!r} differs between {first[0]} and {mode}:\n"
            f"{first[1][:1500]!r}\n{answer[:1500]!r}")
    return r.content


def _cpu_rows() -> list:
    rows = FMT_DATA.table_rows(CPU)
    # ORDER BY time, host, region (ascending, NULLS LAST)
    return sorted(rows, key=lambda r: (r.time, r.tags["host"], "region" not in r.tags,
                                       r.tags.get("region", "")))


def _text(name: str, v: object) -> str:
    """A generated value as CSV writes it (floats are compared as numbers instead)."""
    if v is None:
        return ""
    if name == "time":
        return iso_ns(v)  # type: ignore[arg-type]
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def test_http_json_and_jsonl_hold_every_value_exactly(fmt_srv: WeirServer) -> None:
    expected = [{c: (iso_ns(r.time) if c == "time" else r.get(c)) for c in CPU_COLS
                 if r.get(c) is not None} for r in _cpu_rows()]
    body = _sql(fmt_srv, CPU_SQL, "json")
    got = json.loads(body)
    assert got == expected, FMT_DATA.describe()
    assert [list(row) for row in got] == [list(row) for row in expected]  # column order
    lines = _sql(fmt_srv, CPU_SQL, "jsonl").decode().split("\n")
    assert lines[-1] == "" and [json.loads(x) for x in lines[:-1]] == expected
    # the big integers are in the text as digits, not float renderings
    assert b"18446744073709551615" in body or all(
        r.get("uptime") != 2**64 - 1 for r in _cpu_rows())


def test_http_csv_holds_every_value_exactly(fmt_srv: WeirServer) -> None:
    import csv
    import io

    body = _sql(fmt_srv, CPU_SQL, "csv").decode()
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert rows[0] == CPU_COLS
    assert len(rows) == len(_cpu_rows()) + 1
    for got, r in zip(rows[1:], _cpu_rows(), strict=True):
        for c, text in zip(CPU_COLS, got, strict=True):
            v = r.get(c)
            if isinstance(v, float):
                assert float(text) == v, (c, text, v)
            else:
                assert text == _text(c, v), (c, text, v, FMT_DATA.describe())


def test_http_pretty_is_the_same_table(fmt_srv: WeirServer) -> None:
    text = _sql(fmt_srv, CPU_SQL, "pretty").decode().split("\n")
    rows = _cpu_rows()
    assert len(text) == len(rows) + 4  # border, header, border, rows, border
    header = [c.strip() for c in text[1].strip("|").split("|")]
    assert header == CPU_COLS
    for line, r in zip(text[3:-1], rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[-1] == iso_ns(r.time)
        assert cells[2] == _text("cores", r.get("cores"))
        assert cells[5] == _text("uptime", r.get("uptime"))


def test_http_parquet_keeps_types_and_values(fmt_srv: WeirServer) -> None:
    t = pq.read_table(pa.BufferReader(_sql(fmt_srv, CPU_SQL, "parquet")))
    assert t.column_names == CPU_COLS
    types = {f.name: f.type for f in t.schema}
    assert types["cores"] == pa.int64() and types["uptime"] == pa.uint64()
    assert types["usage"] == pa.float64() and types["healthy"] == pa.bool_()
    assert types["state"] == pa.string() and types["time"] == NS
    got = t.to_pylist()
    for g, r in zip(got, _cpu_rows(), strict=True):
        g["time"] = pa.scalar(g["time"], NS).cast(pa.int64()).as_py()
        assert g == {c: r.get(c) for c in CPU_COLS}, FMT_DATA.describe()


def test_http_escaped_table_in_every_format(fmt_srv: WeirServer) -> None:
    cols = ["host name", "mount,point", "free,u", "note", "ratio=pct", "ro flag",
            "used bytes", "time"]
    sql = (f"SELECT {', '.join(sql_quote_ident(c) for c in cols)} FROM "
           f"{sql_quote_ident(ESCAPED)} ORDER BY time, \"mount,point\"")
    rows = sorted(FMT_DATA.table_rows(ESCAPED), key=lambda r: (r.time, r.tags["mount,point"]))
    expected = [{c: (iso_ns(r.time) if c == "time" else r.get(c)) for c in cols
                 if r.get(c) is not None} for r in rows]
    assert json.loads(_sql(fmt_srv, sql, "json")) == expected
    t = pq.read_table(pa.BufferReader(_sql(fmt_srv, sql, "parquet")))
    assert t.column_names == cols and t.num_rows == len(rows)
    _sql(fmt_srv, sql, "csv")
    _sql(fmt_srv, sql, "pretty")


def test_http_aggregates_of_big_integers(fmt_srv: WeirServer) -> None:
    rows = FMT_DATA.table_rows(CPU)
    cores = [r.fields["cores"] for r in rows if "cores" in r.fields]
    up = [r.fields["uptime"] for r in rows if "uptime" in r.fields]
    sql = ("SELECT max(uptime) AS umax, min(uptime) AS umin, max(cores) AS imax, "
           "min(cores) AS imin, count(*) AS n, min(time) AS t0, max(time) AS t1 FROM cpu")
    assert json.loads(_sql(fmt_srv, sql, "json")) == [{
        "umax": max(up), "umin": min(up), "imax": max(cores), "imin": min(cores),
        "n": len(rows), "t0": iso_ns(rows[0].time), "t1": iso_ns(rows[-1].time)}]
    assert _sql(fmt_srv, sql, "csv").decode().split("\n")[1] == ",".join([
        str(max(up)), str(min(up)), str(max(cores)), str(min(cores)), str(len(rows)),
        iso_ns(rows[0].time), iso_ns(rows[-1].time)])

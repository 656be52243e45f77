"""Hypothesis runs of the fuzz harness's invariants (fuzz/lineprotocol_invariants.py):
arbitrary bytes, near-valid lines with a few mutations, and token soup go through
parse() on every path and precision; nothing raises, every line is a row or an error
with its line number, the paths and precisions agree and accepted rows round-trip."""

from __future__ import annotations

import importlib.util
import sys

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ROOT

_PATH = ROOT / "fuzz" / "lineprotocol_invariants.py"
_spec = importlib.util.spec_from_file_location("lineprotocol_invariants", _PATH)
assert _spec is not None and _spec.loader is not None
invariants = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = invariants
_spec.loader.exec_module(invariants)

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

VALID_LINES = [
    b"cpu,host=server01,region=us-west usage=0.64,cores=8i 1700000000000000000",
    b'm s="hello, world = x",n=-1i,u=18446744073709551615u,b=t',
    b"m a=1,b=1.5,c=-2,d=1e5,e=1E-3,f=.5,g=1.,h=-0,i=007 -5",
    b"my\\ m\\,x,tag\\ k=v\\,w\\=x,t=a=b f\\ k\\=y=2.5",
    b'm\\x,t=a\\b v="c\\\\d \\"q\\"" 1',
    "café,ü=ö 😀=1,s=\"€ 日本\"".encode(),
    b"m v=1 1700000000",
    b"m,t=a v=2 1700000000000",
    b"m v=3 -9223372036854775808",
    b"m v=4 9223372036854775807",
    b"m  v=1   5",
    b"  m v=2\t",
    b"m v=1\r",
    b"# comment",
    b"",
    b"cpu v=1i",
    b"m,v=a w=1",
    b'm t="x"',
]
TOKENS = [b" ", b",", b"=", b'"', b"\\", b"\n", b"\r", b"\t", b"#", b"i", b"u", b"-", b"+",
          b".", b"e", b"E+", b"x", b"0x", b"1", b"0", b"t", b"F", b"time", b"\xff",
          "é".encode(), b"9223372036854775808", b"18446744073709551616", b"\x00"]


@st.composite
def near_valid_bodies(draw: st.DrawFn) -> bytes:
    """A few good lines joined, then up to five byte-level mutations."""
    lines = draw(st.lists(st.sampled_from(VALID_LINES), min_size=1, max_size=6))
    body = bytearray(draw(st.sampled_from([b"\n", b"\r\n"])).join(lines))
    for _ in range(draw(st.integers(0, 5))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        pos = draw(st.integers(0, len(body)))
        if op == "insert":
            body[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del body[pos:pos + draw(st.integers(1, 4))]
        elif op == "replace":
            body[pos:pos + 1] = draw(st.sampled_from(TOKENS))
        else:
            body[pos:pos] = body[pos:pos + draw(st.integers(1, 12))]
    return bytes(body)


@SETTINGS
@given(st.binary(max_size=200))
@example(b"")
@example(b"\xff\n m v=1\r\n#x")
def test_arbitrary_bytes(data: bytes) -> None:
    invariants.check_body(data)


@settings(SETTINGS, max_examples=300)
@given(near_valid_bodies())
@example(b"m v=0x10i 1")  # the batch path once read Arrow's hex integers
@example(b"m v=1 0x10")
@example(b"m,a\\=b=c v=1")
def test_near_valid_bodies(data: bytes) -> None:
    invariants.check_body(data)


# Good lines of a few tables whose tag and field names and field types clash: which
# lines are errors depends on the lines before them, and on the stored schema.
_SERIES = [b"m", b"m,t=a", b"m,t=b,u=c", b"m,v=x", b"cpu", b"cpu,t=a", b"m,u=c,t=a"]
_FIELDS = [b"v=1", b"v=1i", b"v=2u", b"t=1", b"u=\"s\"", b"w=t", b"v=1,t=2", b"s=\"x y\"",
           b"v=1,v=2", b"w=F,v=3"]
_TIMES = [b"", b" 1", b" 1700000000", b" -5"]


@st.composite
def clashing_bodies(draw: st.DrawFn) -> bytes:
    return b"\n".join(draw(st.sampled_from(_SERIES)) + b" " + draw(st.sampled_from(_FIELDS))
                      + draw(st.sampled_from(_TIMES))
                      for _ in range(draw(st.integers(1, 10))))


@settings(SETTINGS, max_examples=200)
@given(clashing_bodies())
@example(b"m v=1\nm,t=a v=1i\nm t=1\nm,t=a v=2")  # a rejected line once vouched for tags
def test_clashing_lines(data: bytes) -> None:
    invariants.check_body(data)


@SETTINGS
@given(st.lists(st.sampled_from([*TOKENS, b"m", b"m,t=a", b"v=1", b"v=1i", b's="x"']),
                max_size=40))
def test_token_soup(tokens: list[bytes]) -> None:
    invariants.check_body(b"".join(tokens))

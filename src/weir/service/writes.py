"""Writes from every API (v3 `write_lp`, v2 `api/v2/write`, v1 `/write`) and from plugins:
one place for each API's parameters, precision and authorization."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, Protocol

from weir.auth import WRITE
from weir.errors import AccessDenied, InvalidBody, WriteError
from weir.ports import Principal, TriggerKey, TriggerWriteSink, WriteResult, WriteSink

Api = Literal["v3", "v2", "v1"]

#: the precisions of the v1/v2 APIs (no "auto"; nanoseconds by default); storage checks
#: v3's own (weir.catalog.validator.PRECISION_NS)
_V1_PRECISIONS = frozenset({"s", "ms", "u", "us", "n", "ns", "second", "millisecond",
                            "microsecond", "nanosecond"})
#: how the reference's request parser lists them when one is unknown
_V1_PRECISION_LIST = ("`second`, `s`, `millisecond`, `ms`, `microsecond`, `us`, `u`, "
                      "`nanosecond`, `ns`, `n`")
#: the v1/v2 APIs' namespace names: 1 to 64 characters, letters, digits, / _ -
_NAMESPACE_MAX = 64

#: reads the request body when the service asks for it (after the checks that need none)
BodyReader = Callable[[], Awaitable[bytes]]


def authorize(principal: Principal | None, db: str, action: str) -> None:
    """Refuse unless `principal` (None: auth is off) may `action` ("read"/"write") `db`."""
    if principal is None or principal.allows(db, action):
        return
    raise AccessDenied(f"token '{principal.name}' may not {action} database '{db}'")


class PluginWriteSink(WriteSink, TriggerWriteSink, Protocol):
    pass


class WriteService:
    def __init__(self, sink: PluginWriteSink) -> None:
        self._sink = sink

    async def write_http(self, api: Api, *, db: str, read_body: BodyReader,
                         principal: Principal | None, precision: str | None = None,
                         rp: str | None = None, accept_partial: bool = True,
                         no_sync: bool = False) -> WriteResult:
        """A write as an HTTP API takes it. v1 and v2 refuse at the first bad line and
        default to nanoseconds; v3 stores the good lines (`accept_partial`) and guesses
        the precision of each timestamp unless told."""
        rp = (rp or "").lower()  # as the reference reads `rp` (`''` is none)
        if api == "v1" and rp not in ("", "''", "autogen", "default"):
            db = f"{db}/{rp}"
        if api == "v3":
            # (`precision=` is no precision the reference knows: refused as `bogus` is)
            precision = "auto" if precision is None else precision
        else:
            precision = precision or "ns"
            accept_partial, no_sync = False, False
            if precision not in _V1_PRECISIONS:
                what = "db/rp/precision" if api == "v1" else "org/bucket/precision"
                raise WriteError(f"failed to deserialize {what} in request: unknown variant "
                                 f"`{precision}`, expected one of {_V1_PRECISION_LIST}")
            _check_namespace(db)
        authorize(principal, db, WRITE)
        body = await read_body()
        _require_utf8(body)
        return await self._sink.write_lp(db, body, precision=precision,
                                         accept_partial=accept_partial, no_sync=no_sync)

    async def commit_trigger_call(self, key: TriggerKey, seq: int,
                                  writes: Mapping[str, str]) -> dict[str, WriteError]:
        """A WAL trigger's call for WAL files up to `seq` returned: its buffered writes and
        its checkpoint, stored as one (exactly once across crashes)."""
        return await self._sink.commit_trigger_writes(key, seq, writes)

    async def write_from_plugin(self, db: str, lines: str, *, no_sync: bool) -> WriteResult:
        """A plugin's buffered or immediate write: nanosecond timestamps, all or nothing."""
        return await self._sink.write_lp(db, lines, precision="ns", accept_partial=False,
                                         no_sync=no_sync, from_plugin=True)


def _check_namespace(db: str) -> None:
    """The v1/v2 APIs' own rule for the database (the reference's namespace name), before
    the database-name rules every API shares."""
    if not 1 <= len(db.encode()) <= _NAMESPACE_MAX:
        raise WriteError(f"namespace name {db} length must be between 1 and "
                         f"{_NAMESPACE_MAX} characters")
    for i, c in enumerate(db):
        if not (c.isalnum() or c in "/_-"):
            raise WriteError(f"namespace name '{db}' contains invalid character, character "
                             f"number {i} is not allowed")


def _require_utf8(body: bytes) -> None:
    """The reference refuses a body that is not UTF-8 as a whole; say where it breaks."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        line = body.count(b"\n", 0, e.start) + 1
        column = e.start - (body.rfind(b"\n", 0, e.start) + 1) + 1
        raise InvalidBody(f"body content is not valid utf8: invalid utf-8 sequence of "
                          f"{e.end - e.start} bytes from index {e.start} (line {line}, "
                          f"byte {column}: {body[e.start:e.end]!r})") from None

"""The InfluxQL syntax tree: what the parser produces and the planner reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ---- expressions -----------------------------------------------------------------------


class Expr:
    """Base of every expression node."""


@dataclass(frozen=True)
class VarRef(Expr):
    name: str
    cast: str | None = None  # "tag" | "field" | "integer" | "float" | "string" | "boolean"


@dataclass(frozen=True)
class Wildcard(Expr):
    kind: str | None = None  # None, "tag" or "field" (`*::field`)


@dataclass(frozen=True)
class Literal(Expr):
    # int, float, str, bool, None from the text; a bind parameter may carry any JSON value
    value: Any


@dataclass(frozen=True)
class DurationLit(Expr):
    ns: int


@dataclass(frozen=True)
class RegexLit(Expr):
    pattern: str


@dataclass(frozen=True)
class Now(Expr):
    pass


@dataclass(frozen=True)
class Call(Expr):
    name: str  # lower case
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # + - * / % = != < <= > >= =~ !~ AND OR
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Paren(Expr):
    expr: Expr


# ---- statements ------------------------------------------------------------------------


@dataclass
class Measurement:
    """One FROM source: a name (or /regex/), optionally qualified by database and rp."""

    name: str | None = None
    regex: str | None = None
    database: str | None = None
    rp: str | None = None


@dataclass
class Field:
    expr: Expr
    alias: str | None = None


@dataclass
class GroupBy:
    time_interval: int | None = None  # ns
    time_offset: int = 0  # ns
    tags: list[str] = field(default_factory=list)
    tag_wildcard: bool = False
    tag_regexes: list[str] = field(default_factory=list)


@dataclass
class Select:
    fields: list[Field]
    sources: list[Measurement]
    where: Expr | None = None
    group_by: GroupBy | None = None
    fill: str = "null"  # null | none | previous | linear | value
    fill_value: int | float | None = None
    order_desc: bool = False
    limit: int | None = None
    offset: int | None = None
    slimit: int | None = None
    soffset: int | None = None
    tz: str | None = None


@dataclass
class ShowDatabases:
    pass


@dataclass
class ShowRetentionPolicies:
    database: str | None = None


@dataclass
class ShowMeasurements:
    database: str | None = None
    rp: str | None = None
    name_eq: str | None = None
    name_regex: str | None = None
    where: Expr | None = None
    limit: int | None = None
    offset: int | None = None


@dataclass
class ShowTagKeys:
    database: str | None = None
    rp: str | None = None
    sources: list[Measurement] = field(default_factory=list)
    where: Expr | None = None
    limit: int | None = None
    offset: int | None = None


@dataclass
class ShowTagValues:
    database: str | None = None
    rp: str | None = None
    sources: list[Measurement] = field(default_factory=list)
    key_op: str = "="  # = != =~ !~ in
    key_values: list[str] = field(default_factory=list)  # names, or one regex pattern
    where: Expr | None = None
    limit: int | None = None
    offset: int | None = None


@dataclass
class ShowFieldKeys:
    database: str | None = None
    rp: str | None = None
    sources: list[Measurement] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


@dataclass
class Unsupported:
    """A statement Weir does not run; executing it raises `error` (naming it)."""

    error: Exception


Statement = (Unsupported | Select | ShowDatabases | ShowRetentionPolicies | ShowMeasurements | ShowTagKeys
             | ShowTagValues | ShowFieldKeys)


def statement_db_rp(stmt: Statement) -> tuple[str | None, str | None]:
    """The database (and retention policy) a statement names itself, if any."""
    if isinstance(stmt, Select):
        for m in stmt.sources:
            if m.database:
                return m.database, m.rp
        return None, None
    if isinstance(stmt, ShowRetentionPolicies):
        return stmt.database, None
    db = getattr(stmt, "database", None)
    rp = getattr(stmt, "rp", None)
    if db is None:
        for m in getattr(stmt, "sources", []) or []:
            if m.database:
                return m.database, m.rp
    return db, rp


def resolve_dbrp(db: str | None, rp: str | None) -> str | None:
    """`db.rp` as the name Weir stores it under: `db` for autogen/default, else `db/rp`."""
    if db is None:
        return None
    if rp and rp not in ("autogen", "default"):
        return f"{db}/{rp}"
    return db

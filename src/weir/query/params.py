"""`$name` placeholders: the values a caller binds, and the ones a statement names."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from datafusion.common import RexType
from datafusion.expr import Placeholder

from weir.query.errors import sql_error

__all__ = ["NO_PARAMS", "param_values", "placeholders"]

#: bound when the caller gave no parameters, so DataFusion still checks every placeholder
#: and reports a missing one in the reference's words
NO_PARAMS = {"__weir_no_params__": pa.scalar(0, pa.int64())}


# ---- parameters --------------------------------------------------------------------------


def param_values(params: dict[str, Any] | None) -> dict[str, pa.Scalar]:
    if not params:
        return dict(NO_PARAMS)
    out: dict[str, pa.Scalar] = {}
    for name, v in params.items():
        key = str(name).removeprefix("$")
        if isinstance(v, pa.Scalar):  # typed already (FlightSQL binds Arrow values)
            out[key] = v
        elif v is None:
            out[key] = pa.scalar(None)
        elif isinstance(v, bool):
            out[key] = pa.scalar(v, pa.bool_())
        elif isinstance(v, int):
            if -(2**63) <= v < 2**63:
                out[key] = pa.scalar(v, pa.int64())
            elif 0 <= v < 2**64:
                out[key] = pa.scalar(v, pa.uint64())
            else:
                raise sql_error(f"Error during planning: parameter ${key}: integer {v} is out "
                                "of range", "planning")
        elif isinstance(v, float):
            out[key] = pa.scalar(v, pa.float64())
        elif isinstance(v, str):
            out[key] = pa.scalar(v, pa.string())
        else:
            raise sql_error(f"Error during planning: parameter ${key}: unsupported value of "
                            f"type {type(v).__name__} (use a string, number, boolean or null)",
                            "planning")
    return out


#: the accessors of DataFusion's plan nodes that hold expressions (a node has some of them)
_PLAN_EXPRESSIONS = ("projections", "predicate", "group_by_exprs", "aggregate_exprs",
                     "sort_exprs", "filters", "skip", "fetch", "on", "filter", "values",
                     "window_expr")
#: a placeholder in the debug text of a DataFusion plan
_DEBUG_PLACEHOLDER = re.compile(r'\bPlaceholder \{ id: "([^"]+)"')


def placeholders(plan: Any) -> pa.Schema:
    """The `$placeholders` of a logical plan (see `QueryDescription.parameters`). The
    Python bindings have no `get_parameter_types`, so the plan is walked: each node's
    expressions, their operands, subqueries and inputs."""
    found: dict[str, pa.DataType] = {}

    def walk_plan(node: Any) -> None:
        variant = node.to_variant()
        for name in _PLAN_EXPRESSIONS:
            accessor = getattr(variant, name, None)
            if callable(accessor):
                walk(accessor())
        for child in node.inputs():
            walk_plan(child)

    def walk(value: Any) -> None:
        if isinstance(value, list | tuple):
            for v in value:
                walk(v)
        elif hasattr(value, "rex_type"):
            walk_expr(value)
        elif callable(getattr(value, "expr", None)):  # a sort expression
            walk(value.expr())

    def walk_expr(e: Any) -> None:
        try:
            variant = e.to_variant()
        except Exception:  # noqa: BLE001 - a kind the bindings cannot convert: its operands
            variant = None
        if isinstance(variant, Placeholder):
            field = variant.field()
            t = field.type if field is not None else pa.null()
            if pa.types.is_dictionary(t):
                t = t.value_type
            if found.get(variant.id(), pa.null()) == pa.null():
                found[variant.id()] = t
            return
        subquery = getattr(variant, "subquery", None)
        if callable(subquery):  # IN (SELECT ...), EXISTS (...), a scalar subquery
            if callable(getattr(variant, "expr", None)):
                walk_expr(variant.expr())
            # (the bindings give no subquery's plan: its placeholders are read from the
            # plan's debug text, untyped)
            for name in _DEBUG_PLACEHOLDER.findall(repr(subquery())):
                found.setdefault(name, pa.null())
            return
        kind = e.rex_type()
        if kind == RexType.Call:
            for operand in e.rex_call_operands():
                walk_expr(operand)
        elif kind == RexType.Alias:
            walk_expr(variant.expr())

    walk_plan(plan)
    numbered = sorted((k for k in found if k[1:].isdigit()), key=lambda k: int(k[1:]))
    named = [k for k in found if not k[1:].isdigit()]
    return pa.schema([pa.field(k, found[k], nullable=True) for k in numbered + named])

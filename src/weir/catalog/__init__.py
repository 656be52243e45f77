"""The catalog: databases, tables and their typed columns, triggers; a log of numbered
versions in the object store, which several nodes may share."""

from weir.catalog.caches import (
    DEFAULT_LAST_CACHE_COUNT,
    DEFAULT_LAST_CACHE_TTL_S,
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_CARDINALITY,
    DistinctCacheDefinition,
    LastCacheDefinition,
    column_identifier,
    column_ordinal,
)
from weir.catalog.catalog import INTERNAL_DB, Catalog, Limits
from weir.catalog.columns import API_FIELD_TYPES, ARROW_TYPES, FIELD, KIND_META, TAG, TIME, Column
from weir.catalog.hard_delete import HardDelete, parse_rfc3339_ns, resolve_hard_delete_time
from weir.catalog.log import CatalogConflict, ColumnTypeConflict
from weir.catalog.schema import (
    DatabaseSchema,
    TableSchema,
    TriggerDefinition,
    validate_db_name,
)

__all__ = [
    "API_FIELD_TYPES",
    "ARROW_TYPES",
    "DEFAULT_LAST_CACHE_COUNT",
    "DEFAULT_LAST_CACHE_TTL_S",
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_CARDINALITY",
    "FIELD",
    "INTERNAL_DB",
    "KIND_META",
    "TAG",
    "TIME",
    "Catalog",
    "CatalogConflict",
    "Column",
    "ColumnTypeConflict",
    "DatabaseSchema",
    "DistinctCacheDefinition",
    "HardDelete",
    "LastCacheDefinition",
    "Limits",
    "TableSchema",
    "TriggerDefinition",
    "column_identifier",
    "column_ordinal",
    "parse_rfc3339_ns",
    "resolve_hard_delete_time",
    "validate_db_name",
]

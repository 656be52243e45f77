"""The service layer: what every front end (HTTP, Flight, the CLI in-process, the
processing engine, later a web page) calls. Front ends only translate their requests and
answers; the services hold the rules (API parameters, precision, authorization) and reach
storage only through the protocols of weir.ports."""

from __future__ import annotations

from dataclasses import dataclass

from weir.ports import Storage
from weir.service.admin import AdminService
from weir.service.caches import CacheService, CreatedCache
from weir.service.queries import QueryService, StatementError
from weir.service.writes import Api, BodyReader, WriteService, authorize


@dataclass(frozen=True)
class Services:
    writes: WriteService
    queries: QueryService
    admin: AdminService
    caches: CacheService

    @classmethod
    def over(cls, storage: Storage, *, hard_delete_default_s: float) -> Services:
        return cls(WriteService(storage), QueryService(storage),
                   AdminService(storage, hard_delete_default_s), CacheService(storage))


__all__ = ["AdminService", "Api", "BodyReader", "CacheService", "CreatedCache", "QueryService",
           "Services", "StatementError", "WriteService", "authorize"]

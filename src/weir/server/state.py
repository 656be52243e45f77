"""What every handler can reach: the config, the database and the processing engine."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from weir.auth import TokenStore
from weir.config import ServeConfig
from weir.database import Database


@dataclass
class ServerState:
    config: ServeConfig
    database: Database
    engine: Any = None  # weir.engine.ProcessingEngine when --plugin-dir is set
    tokens: TokenStore | None = None  # None when started --without-auth
    process_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    requests: dict[str, int] = field(default_factory=dict)


def state_of(request: Request) -> ServerState:
    return request.app.state.weir

"""What every handler can reach: the config, the services, the token store and the
processing engine's own routes. Handlers call the services, never storage."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request

from weir.auth import TokenStore
from weir.config import ServeConfig
from weir.database import Database
from weir.service import Services

if TYPE_CHECKING:
    from weir.engine import ProcessingEngine


@dataclass
class ServerState:
    config: ServeConfig
    database: Database  # for the server's own life cycle (start, stop, metrics)
    services: Services
    engine: ProcessingEngine | None = None  # when --plugin-dir is set
    tokens: TokenStore | None = None  # None when started --without-auth
    process_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    requests: dict[str, int] = field(default_factory=dict)


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.weir
    return state

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
from weir.metrics import ServerMetrics
from weir.service import Services

if TYPE_CHECKING:
    from weir.engine import ProcessingEngine


@dataclass
class ServerState:
    config: ServeConfig
    database: Database  # for the server's own life cycle (start, stop, /ready, /metrics)
    services: Services
    engine: ProcessingEngine | None = None  # when --plugin-dir is set
    tokens: TokenStore | None = None  # None when started --without-auth
    process_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    #: every recorder of this server, over the registry /metrics renders
    metrics: ServerMetrics = field(default_factory=ServerMetrics.create)
    #: what the server is doing while it starts (None once it serves): until then every
    #: request but /ready (and /metrics, when it needs no token) is answered 503
    starting: str | None = None


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.weir
    return state

"""The cascade's nodes as the origin's console sees them: role, callers, last heartbeat.

Each node (``callbridge serve --role origin|edge``) writes its row every
few seconds (``store.nodes``); a standalone node writes none, and the list
is empty.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from callbridge.store.events import EventStore
from callbridge.store.nodes import NodeStore
from callbridge.store.users import Operator
from callbridge.web.auth import require_operator
from callbridge.web.deps import event_store

router = APIRouter(prefix="/api/bridge", tags=["calls"])


class NodeView(BaseModel):
    node_id: str
    role: str
    sip: str
    callers: int
    started_at: datetime
    last_seen: datetime
    up: bool


@router.get("/nodes", response_model=list[NodeView])
async def nodes(
    store: Annotated[EventStore, Depends(event_store)],
    _: Annotated[Operator, Depends(require_operator)],
) -> list[NodeView]:
    """Every node of the cascade that ever beat, freshest first; ``up``: heard within 10 s."""
    health = await run_in_threadpool(NodeStore(store.database).health, datetime.now(UTC))
    return [NodeView(**vars(node)) for node in health]

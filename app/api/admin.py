"""Users (their memories; forgetting them) and the catalog's items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from app.api.common import call, runs_of, service_of
from app.errors import ApiError
from app.schemas import (
    ERROR_RESPONSES,
    ID_PATTERN,
    ForgetOut,
    IngestOut,
    IngestRequest,
    ItemIn,
    ItemOut,
    ItemUpserted,
    MemoryOut,
    UserMemoriesOut,
)
from app.security import Principal, require_admin, require_client
from recdata.dataset import Item

router = APIRouter(prefix="/v1", tags=["users and catalog"], responses=ERROR_RESPONSES)


@router.get(
    "/users/{user_id}/memories",
    response_model=UserMemoriesOut,
    summary="What the service remembers about a user.",
)
async def user_memories(
    user_id: str, request: Request, _: Annotated[Principal, Depends(require_client)]
) -> UserMemoriesOut:
    service = service_of(request)
    state = await call(service.short_term.user_state, user_id)
    events = await call(service.short_term.user_events, user_id)
    memories = await call(service.long_term_memories, user_id)
    return UserMemoriesOut(
        user_id=user_id,
        memories=[
            MemoryOut(memory_id=m.memory_id, kind=m.kind, text=m.text, created_at=m.created_at)
            for m in memories
        ],
        profile=state.profile,
        excluded_item_ids=sorted(state.excluded),
        feedback_item_ids=[item for item, _ in state.feedback],
        events=len(events),
    )


@router.delete(
    "/users/{user_id}",
    response_model=ForgetOut,
    summary="Forget a user: sessions, checkpoints, profile, events and memories (admin).",
)
async def forget_user(
    user_id: str, request: Request, _: Annotated[Principal, Depends(require_admin)]
) -> ForgetOut:
    service = service_of(request)
    deleted = await call(service.forget_user, user_id)
    deleted["live_runs"] = runs_of(request).forget_subject(user_id)
    return ForgetOut(user_id=user_id, deleted=deleted)


@router.get("/items/{item_id}", response_model=ItemOut, summary="One catalog item.")
async def get_item(
    item_id: str, request: Request, _: Annotated[Principal, Depends(require_client)]
) -> ItemOut:
    ds = service_of(request).toolbox().dataset
    index = ds.item_index.get(item_id)
    if index is None:
        raise ApiError(404, "item_not_found", f"no item {item_id!r} in the catalog")
    item = ds.items[index]
    return ItemOut(
        item_id=item.item_id,
        title=item.title,
        attributes={k: list(v) for k, v in item.attributes.items()},
        text=item.text,
    )


@router.put(
    "/items/{item_id}",
    response_model=ItemUpserted,
    responses={201: {"model": ItemUpserted, "description": "A new item was added."}},
    summary="Add or replace a catalog item (admin). A new item refits the model.",
)
async def upsert_item(
    item_id: Annotated[str, Path(pattern=ID_PATTERN)],
    body: ItemIn,
    request: Request,
    response: Response,
    _: Annotated[Principal, Depends(require_admin)],
) -> ItemUpserted:
    service = service_of(request)
    attributes = {k: tuple(v) for k, v in body.attributes.items()}
    created = await call(service.upsert_item, Item(item_id, body.title, attributes, body.text))
    response.status_code = 201 if created else 200
    return ItemUpserted(
        item=ItemOut(item_id=item_id, title=body.title, attributes=body.attributes, text=body.text),
        created=created,
    )


@router.post(
    "/admin/ingest",
    response_model=IngestOut,
    summary="Load a dataset from a folder on the server as a catalog (admin).",
)
async def ingest(
    body: IngestRequest, request: Request, _: Annotated[Principal, Depends(require_admin)]
) -> IngestOut:
    service = service_of(request)
    result = await call(
        service.ingest, body.path, body.format, body.columns, body.name, body.dialogues
    )
    return IngestOut(**result)

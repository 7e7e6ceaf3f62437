"""Schedules over HTTP (``/v1/schedules``, admin scope) and the scheduler the app runs.

:func:`install` adds the router, gives the client the server-wide webhook settings, and runs
a :class:`~aesoperator.schedules.Scheduler` for the app's lifetime (``app.state.scheduler``).
A token sees and removes only its project's schedules (another project's id: 404), and
scheduled runs are submitted in the schedule's project.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ..client import Aesoperator
from ..errors import UserError
from ..schedules import BaseScheduleStore, CronError, Scheduler, open_schedules
from ..task import Task, check_webhook_url, mask_userinfo
from ._auth import Admin
from ._problems import ProblemError, responses
from ._settings import ServiceSettings


class NewSchedule(BaseModel):
    """``POST /v1/schedules``: a cron expression (5 fields, UTC) and the task it runs."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(..., max_length=200, examples=["*/5 * * * *"])
    task: dict[str, Any] = Field(..., description="a Task as JSON (Task.model_dump)")
    allow_overlap: bool = False


class ScheduleOut(BaseModel):
    id: str
    project: str
    cron: str
    task: dict[str, Any]
    allow_overlap: bool
    next_run_at: datetime
    last_run_at: datetime | None
    last_execution_id: str | None
    missed: int
    skipped: int
    last_error: str | None
    created_at: datetime


router = APIRouter(prefix="/v1", tags=["schedules"], responses=responses(401, 403, 429))


def _store(request: Request) -> BaseScheduleStore:
    store: BaseScheduleStore = request.app.state.schedules
    return store


@router.get("/schedules", summary="List schedules", response_model=list[ScheduleOut])
async def list_schedules(request: Request, who: Admin) -> list[dict[str, Any]]:
    """The project's schedules (`scope: admin`) with their next and last run, the last
    execution they started, and how many fire times were missed or skipped."""
    return [s.to_json() for s in _store(request).all(project=who.project)]


@router.post(
    "/schedules",
    summary="Add a schedule",
    status_code=201,
    response_model=ScheduleOut,
    responses=responses(400, 413, 422),
)
async def add_schedule(
    request: Request, who: Admin, body: Annotated[NewSchedule, Body()]
) -> dict[str, Any]:
    """Run `task` at every fire time of `cron` (5 fields, UTC) in the caller's project
    (`scope: admin`). With `allow_overlap` false, a fire time that finds the previous run
    still going is skipped. A bad cron expression or task is 422, naming the field."""
    task = Task.model_validate(body.task)  # ValidationError: 422 naming the field
    store = _store(request)
    try:
        added = await run_in_threadpool(
            store.add, body.cron, task, allow_overlap=body.allow_overlap, project=who.project
        )
    except CronError as exc:
        raise ProblemError(422, str(exc), field="cron", value=body.cron[:200]) from None
    return added.to_json()


@router.delete(
    "/schedules/{schedule_id}",
    summary="Remove a schedule",
    status_code=204,
    responses=responses(404),
)
async def remove_schedule(
    request: Request,
    who: Admin,
    schedule_id: Annotated[str, Path(description="the schedule's `id`, as added or listed")],
) -> Response:
    """Stop the schedule (`scope: admin`); executions it already started go on."""
    if not await run_in_threadpool(_store(request).remove, schedule_id, project=who.project):
        raise ProblemError(404, f"no schedule with id {schedule_id[:100]!r}")
    return Response(status_code=204)


def install(app: FastAPI, client: Aesoperator, settings: ServiceSettings) -> None:
    """Add schedules and server-wide webhooks to the app of ``client``.

    The webhook settings default to ``$AESOP_WEBHOOK_URL`` and ``$AESOP_WEBHOOK_SECRET`` (a
    secret is better kept off the command line).
    """
    url = settings.webhook_url or os.environ.get("AESOP_WEBHOOK_URL") or None
    secret = settings.webhook_secret or os.environ.get("AESOP_WEBHOOK_SECRET") or None
    if url is not None:
        try:
            check_webhook_url(url)
        except ValueError as exc:
            raise UserError(f"webhook_url: got {mask_userinfo(url)!r}; {exc}") from None
        if secret is None and client.webhook_secret is None:
            raise UserError(
                "webhook_secret: none for the server-wide webhook_url; deliveries are signed "
                "with HMAC-SHA256: set ServiceSettings(webhook_secret=...) or "
                "$AESOP_WEBHOOK_SECRET"
            )
        client.webhook_url = url
    if secret is not None:
        client.webhook_secret = secret
    # The schedules kept with the client's store: several servers on one PostgreSQL store
    # share them, and each fire time is claimed by one of their schedulers.
    schedules = open_schedules(client.store_url)
    app.state.schedules = schedules
    app.state.scheduler = Scheduler(client, store=schedules) if settings.schedules else None
    app.include_router(router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            scheduler: Scheduler | None = app.state.scheduler
            if scheduler is not None:
                scheduler.start()
            try:
                yield state
            finally:
                if scheduler is not None:
                    await run_in_threadpool(scheduler.close)
                app.state.schedules.close()

    app.router.lifespan_context = lifespan

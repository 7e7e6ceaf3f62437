"""The remote client: ``Aesoperator(url=..., token=...)`` speaks to ``aesop serve`` over HTTP.

Same methods, same results, same exceptions as the local client; only how they get there
differs. Nothing here imports the server: httpx is the only dependency. Handlers are never
sent over the wire (no code travels): they are registered on the server
(``aesop serve --import your_module``).

- Errors: ``application/problem+json`` answers become the exception the local client would
  raise, with the server's message (which is the Python API's message).
- ``on_progress``/``on_alert``: one server-sent-events stream per execution, read by a
  daemon thread that resumes with ``Last-Event-ID`` after a dropped connection and stops at
  the stream's ``end``. Callbacks run one at a time, in order, on one thread, as locally.
- Results: the files a result names are downloaded into a local cache and their ``path``
  points there, so ``result.save_report(...)`` works on the caller's machine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ._bounds import shape_problem
from .client import Aesoperator, Execution, Isolation, _result_or_raise
from .errors import (
    _BY_NAME as _TASK_ERRORS,
)
from .errors import (
    AesoperatorError,
    ErrorInfo,
    NoPlannerError,
    NotFoundError,
    UserError,
    ValidationError,
    from_info,
)
from .execution import Alert, Event, TaskResult, TaskState, TaskStatus
from .store.memory import Memory, _dumps, _key
from .task import Task

_RATE_RETRIES = 5  # 429s in a row before giving up
_MAX_RETRY_AFTER = 30.0  # seconds: a longer Retry-After is not waited out, it is reported
_STREAM_RETRIES = 30  # failed reconnects in a row before a progress stream gives up
_USER_ERRORS: dict[str, type[UserError]] = {
    cls.__name__: cls for cls in (ValidationError, NoPlannerError, NotFoundError, UserError)
}


class ServiceUnavailable(AesoperatorError, ConnectionError):
    """The service could not be reached (also a ``ConnectionError``)."""


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(
            f"url: got {url!r}; use the service's address, such as 'http://127.0.0.1:8750' "
            "(http:// or https://, a host, an optional port)"
        )
    if parts.query or parts.fragment:
        raise UserError(f"url: got {url!r}; give the service's base address, without ?query or #")
    try:
        parts.port  # noqa: B018 - raises for a port out of range or not a number
    except ValueError as exc:
        raise UserError(f"url: got {url!r}; {exc}") from None
    return url.rstrip("/")


def _check_token(token: str | None) -> str | None:
    if token is None or token == "":
        return None
    if (
        not isinstance(token, str)
        or not token.startswith("aesop_")
        or any(c in token for c in " \r\n")
    ):
        shown = f"{token[:6]!r}..." if isinstance(token, str) else repr(type(token).__name__)
        raise UserError(
            f"token: got {shown}; tokens look like 'aesop_' followed by 43 characters: "
            "make one on the server with `aesop token create NAME`"
        )
    return token


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aesoperator" / "remote"


class _Http:
    """One httpx client with the service's errors turned into ours."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token
        headers = {"User-Agent": "aesoperator-remote"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(
            base_url=url, headers=headers, timeout=httpx.Timeout(60.0, connect=10.0)
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if content is not None else None
        for attempt in range(_RATE_RETRIES + 1):
            try:
                resp = self.client.request(
                    method, path, params=params, json=json_body, content=content, headers=headers
                )
            except httpx.TransportError as exc:
                raise self.unreachable(exc) from None
            if resp.status_code == 429 and attempt < _RATE_RETRIES:
                wait = self.retry_after(resp)
                if wait is not None:
                    time.sleep(wait)
                    continue
            if resp.status_code >= 400:
                raise self.error(resp)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean or None).json()

    def unreachable(self, exc: Exception) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"cannot reach the Aesoperator service at {self.url} ({type(exc).__name__}: {exc}); "
            "is `aesop serve` running there, and is the url right?"
        )

    @staticmethod
    def retry_after(resp: httpx.Response) -> float | None:
        """Seconds to wait before retrying a 429, or None when it is not worth waiting."""
        try:
            wait = float(resp.headers.get("Retry-After", "1"))
        except ValueError:
            wait = 1.0
        return max(wait, 0.0) if wait <= _MAX_RETRY_AFTER else None

    def error(self, resp: httpx.Response) -> AesoperatorError:
        """The exception the local client would raise for this error answer."""
        problem = _problem(resp)
        detail = str(problem.get("detail") or problem.get("title") or resp.reason_phrase)
        code = resp.status_code
        if code == 401:
            why = (
                "no token was given: pass token=... or set AESOP_TOKEN"
                if not self.token
                else "the token is wrong or was revoked"
            )
            return UserError(
                f"{self.url} refused the request (401: {detail}); {why}. Make a token on the "
                "server with `aesop token create NAME --scope run`"
            )
        if code == 403:
            return UserError(
                f"{detail} (403: the token's scope does not allow this; make one with "
                "`aesop token create NAME --scope run` or `--scope admin`)"
            )
        if code == 404:
            return NotFoundError(detail)
        if code == 413:
            return ValidationError(f"{detail} (413: the request body is over the server's limit)")
        if code == 429:
            return UserError(
                f"{detail} (429: rate limited by the server; retry after "
                f"{resp.headers.get('Retry-After', '?')} s)"
            )
        # ``error`` names the Python exception the server's own API raised.
        name = str(problem.get("error") or "")
        if name in _USER_ERRORS:
            return _USER_ERRORS[name](detail)
        if code == 409:  # an AesoperatorError that is not the caller's: rebuilt by its name
            title = name or str(problem.get("title", ""))
            if title in _TASK_ERRORS:
                return from_info(ErrorInfo(type=title, message=detail))
        if code < 500:
            named = _named_user_error(problem)
            if named is not None:
                return named(detail)
            return ValidationError(detail) if code == 422 else UserError(detail)
        return AesoperatorError(f"the service failed ({code}): {detail}")


def _problem(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {"detail": resp.text[:500] or resp.reason_phrase}
    return body if isinstance(body, dict) else {"detail": str(body)[:500]}


def _named_user_error(problem: dict[str, Any]) -> type[UserError] | None:
    """The error class a problem names in its ``type`` URI's last segment or its ``title``."""
    for raw in (str(problem.get("type", "")), str(problem.get("title", ""))):
        last = raw.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
        squashed = "".join(part.capitalize() for part in last.replace("_", "-").split("-"))
        for candidate in (last, squashed, squashed + "Error"):
            if candidate in _USER_ERRORS:
                return _USER_ERRORS[candidate]
    return None


def _task_body(task: Task, webhook_url: str | None, webhook_secret: str | None) -> dict[str, Any]:
    """The Task as JSON, secrets included: ``model_dump`` leaves them (and the webhook's
    key) out on purpose, and the server needs them (they are never stored)."""
    body = task.model_dump(mode="json")
    if task.secrets:
        body["secrets"] = {k: v.get_secret_value() for k, v in task.secrets.items()}
    if body.get("webhook_url") is None and webhook_url:
        body["webhook_url"] = webhook_url
    secret = task.webhook_secret.get_secret_value() if task.webhook_secret else webhook_secret
    if secret:
        body["webhook_secret"] = secret
    return body


def _sse(lines: Iterator[str]) -> Iterator[tuple[str | None, str, str]]:
    """(id, event, data) of each message of a text/event-stream."""
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event_id, kind, "\n".join(data)
            event_id, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            continue  # keep-alive comment
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            event_id = value
        elif field == "event":
            kind = value
        elif field == "data":
            data.append(value)


class _Watcher:
    """The progress/alert stream of one execution, read on a daemon thread."""

    def __init__(self, client: RemoteAesoperator, execution_id: str) -> None:
        self._client = client
        self.execution_id = execution_id
        self._lock = threading.Lock()
        self._progress: list[Callable[[TaskStatus], Any]] = []
        self._alert_fns: list[Callable[[Alert], Any]] = []
        self._alerts: list[Alert] = []
        self._last: tuple[Any, ...] | None = None
        self.last_seq = 0
        self.stopped = threading.Event()
        self.received = 0  # messages read, over every connection
        self._thread = threading.Thread(
            target=self._run, name=f"aesop-events-{execution_id}", daemon=True
        )
        self._thread.start()

    def add(self, kind: str, fn: Callable[[Any], Any]) -> None:
        with self._lock:
            if kind == "alert":
                for alert in self._alerts:  # earlier alerts are replayed, as locally
                    self._client._callbacks.submit(fn, alert)
                self._alert_fns.append(fn)
            else:
                self._progress.append(fn)

    def _run(self) -> None:
        failures = 0
        while not self.stopped.is_set() and not self._client._closed:
            seen = self.received
            try:
                if self._stream():
                    break
            except (httpx.TransportError, httpx.StreamError):
                pass
            except AesoperatorError:
                break  # 401/404...: reconnecting would not help
            # A connection that brought something resets the count: only a stream that keeps
            # failing without news gives up.
            failures = 0 if self.received > seen else failures + 1
            if failures > _STREAM_RETRIES:
                break
            self.stopped.wait(min(0.1 * 2 ** min(failures, 6), 5.0))
        self.stopped.set()

    def _stream(self) -> bool:
        """Read the stream until it ends; True when the execution ended (``end`` seen)."""
        http = self._client._http
        headers = {"Accept": "text/event-stream"}
        if self.last_seq:
            headers["Last-Event-ID"] = str(self.last_seq)
        path = f"/v1/tasks/{quote(self.execution_id, safe='')}/events"
        with http.client.stream(
            "GET", path, headers=headers, timeout=httpx.Timeout(60.0, connect=10.0)
        ) as resp:
            if resp.status_code == 429:
                self.stopped.wait(http.retry_after(resp) or _MAX_RETRY_AFTER)
                return False
            if resp.status_code >= 400:
                resp.read()
                raise http.error(resp)
            for event_id, kind, data in _sse(resp.iter_lines()):
                self.received += 1
                if self.stopped.is_set():
                    return True
                if kind == "end":
                    self._status(TaskStatus.model_validate_json(data))
                    return True
                if kind == "status":
                    self._status(TaskStatus.model_validate_json(data))
                    continue
                if event_id is not None and event_id.isdigit():
                    self.last_seq = max(self.last_seq, int(event_id))
                if kind == "alert":
                    self._alert(Event.model_validate_json(data))
        return False

    def _status(self, status: TaskStatus) -> None:
        key = (status.state, status.progress, status.current_action)
        with self._lock:
            if key == self._last:
                return
            self._last = key
            for fn in self._progress:
                self._client._callbacks.submit(fn, status)

    def _alert(self, event: Event) -> None:
        alert = Alert.model_validate(event.data)
        with self._lock:
            self._alerts.append(alert)
            for fn in self._alert_fns:
                self._client._callbacks.submit(fn, alert)


class RemoteExecution(Execution):
    """An ``Execution`` on a served instance: waits by polling the status with back-off."""

    _client: RemoteAesoperator

    def wait(self, timeout: float | None = None) -> TaskStatus:
        end = None if timeout is None else time.monotonic() + timeout
        delay = 0.02
        while True:
            status = self.status()
            if status.state.finished:
                return status
            now = time.monotonic()
            if end is not None and now >= end:
                raise TimeoutError(f"execution {self.id} still running after {timeout}s")
            time.sleep(delay if end is None else max(0.0, min(delay, end - now)))
            delay = min(delay * 1.5, 0.5)

    async def _await(self) -> TaskResult:
        status = await asyncio.to_thread(self.wait)
        return _result_or_raise(status)


class RemoteMemory(Memory):
    """A memory namespace of the served instance. Keys and values are checked here, with the
    local messages, before anything is sent."""

    def __init__(self, http: _Http, namespace: str) -> None:  # no store: the server has it
        self._http = http
        self.namespace = namespace

    def _path(self, key: str | None = None) -> str:
        base = f"/v1/memory/{quote(self.namespace, safe='')}"
        return base if key is None else f"{base}/{quote(_key(key), safe='')}"

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self._http.get_json(self._path(key))["value"]
        except NotFoundError:
            return default

    def set(self, key: str, value: Any) -> None:
        raw = _dumps("set", key, value)  # TypeError / ValidationError as locally
        self._http.request("PUT", self._path(key), content=f'{{"value": {raw}}}'.encode())

    def update(self, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        raise UserError(
            f"memory.update({key!r}, ...) is atomic only where the store is: over HTTP it "
            "would not be. Run it on the server, in a handler (ctx.memory.update), or use "
            "get and set if no other writer can come in between"
        )

    def incr(self, key: str, by: int | float = 1) -> int | float:
        raise UserError(
            f"memory.incr({key!r}) is atomic only where the store is: over HTTP it would not "
            "be. Run it on the server, in a handler (ctx.memory.incr)"
        )

    def delete(self, key: str) -> bool:
        try:
            self._http.request("DELETE", self._path(key))
        except NotFoundError:
            return False
        return True

    def keys(self) -> list[str]:
        return list(self._http.get_json(self._path())["keys"])

    def clear(self) -> None:
        for key in self.keys():
            self.delete(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not key or shape_problem(key) is not None:
            return False
        missing = object()
        return self.get(key, missing) is not missing


class RemoteAesoperator(Aesoperator):
    """``Aesoperator`` on a served instance. Made by ``Aesoperator(url=...)`` (or with
    ``$AESOP_URL`` set), never directly."""

    def __init__(
        self,
        *,
        data_dir: str | Path | None = None,
        pool_size: int | None = None,
        isolation: Isolation = "process",
        llm: str | None = None,
        url: str | None = None,
        token: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        local = {"data_dir": data_dir, "pool_size": pool_size, "llm": llm}
        given = [k for k, v in local.items() if v is not None]
        if isolation != "process":
            given.append("isolation")
        if given:
            raise UserError(
                f"{', '.join(given)}: these set up a local client; a remote one (url=...) runs "
                "with the server's own settings (`aesop serve --data-dir ...`)"
            )
        self.url = _check_url(url or os.environ.get("AESOP_URL", ""))
        if token is None:
            token = os.environ.get("AESOP_TOKEN")
        self._http = _Http(self.url, _check_token(token))
        # Defaults for tasks without their own, sent with each task (the server signs with
        # its own secret when neither gives one).
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self._lock = threading.RLock()
        self._closed = False
        self._watchers: dict[str, _Watcher] = {}
        self._callbacks = concurrent.futures.ThreadPoolExecutor(1, "aesop-callbacks")
        parts = urlsplit(self.url)
        self._cache = _cache_root() / f"{parts.hostname}_{parts.port or parts.scheme}"
        self.memory = RemoteMemory(self._http, "global")

    def __repr__(self) -> str:
        return f"Aesoperator(url={self.url!r})"

    # -- handlers live on the server -------------------------------------------------------------
    def handler(self, name: str) -> Callable[[Any], Any]:
        raise UserError(
            f"handler({name!r}): this client runs tasks on {self.url}, where handlers are "
            "registered: put it in a module and start the server with "
            "`aesop serve --import your_module`"
        )

    def function(self, fn: Any = None, /, *, name: str | None = None) -> Any:
        raise UserError(
            f"function: this client runs tasks on {self.url}, where functions are registered: "
            "put it in a module and start the server with `aesop serve --import your_module`"
        )

    # -- running -----------------------------------------------------------------------------------
    def execute_task_async(self, task: Task) -> Execution:
        if not isinstance(task, Task):
            raise UserError(f"execute_task expects a Task, got {type(task).__name__}")
        self._check_open()
        body = _task_body(task, self.webhook_url, self.webhook_secret)
        status = self._status(self._http.request("POST", "/v1/tasks", json_body=body))
        return RemoteExecution(self, status.id, status.name)

    def replay(
        self,
        execution_id: str,
        inputs: dict[str, Any] | None = None,
        *,
        secrets: dict[str, str] | None = None,
        repair: bool = True,
        timeout: float | None = None,
    ) -> TaskResult:
        self._check_open()
        body = {"inputs": inputs, "secrets": secrets, "repair": repair}
        resp = self._http.request("POST", f"{self._task_path(execution_id)}/replay", json_body=body)
        status = self._status(resp)
        execution = RemoteExecution(self, status.id, status.name)
        try:
            return execution.result(timeout)
        except KeyboardInterrupt:
            execution.cancel()
            raise

    def warmup(self, timeout: float = 60) -> None:
        """Wait until the server says it is ready (its store and worker pool answer)."""
        end = time.monotonic() + timeout
        while True:
            try:
                resp = self._http.client.get("/readyz")
            except httpx.TransportError as exc:
                raise self._http.unreachable(exc) from None
            if resp.status_code == 200:
                return
            if time.monotonic() >= end:
                raise TimeoutError(f"{self.url} not ready after {timeout}s ({resp.status_code})")
            time.sleep(0.2)

    def _future(self, execution_id: str) -> None:
        return None  # nothing runs in this process

    def _add_callback(self, execution_id: str, kind: str, fn: Callable[[Any], Any]) -> None:
        if not callable(fn):
            raise UserError(f"on_{kind} expects a function, got {fn!r}")
        with self._lock:
            self._check_open()
            watcher = self._watchers.get(execution_id)
            if watcher is None or (watcher.stopped.is_set() and not watcher.last_seq):
                watcher = self._watchers[execution_id] = _Watcher(self, execution_id)
        watcher.add(kind, fn)

    # -- reading state -----------------------------------------------------------------------------
    def get_task_status(self, execution_id: str) -> TaskStatus:
        return self._status(self._http.request("GET", self._task_path(execution_id)))

    def get_execution(self, execution_id: str) -> Execution:
        status = self.get_task_status(execution_id)
        return RemoteExecution(self, execution_id, status.name)

    def cancel_task(self, execution_id: str) -> bool:
        resp = self._http.request("POST", f"{self._task_path(execution_id)}/cancel")
        return bool(resp.json()["cancelled"])

    def list_tasks(
        self, *, state: str | TaskState | None = None, name: str | None = None, limit: int = 50
    ) -> list[TaskStatus]:
        if state is not None:
            try:
                state = TaskState(state)
            except ValueError:
                raise UserError(
                    f"state: got {state!r}; use one of {[s.value for s in TaskState]}"
                ) from None
        out: list[TaskStatus] = []
        cursor: str | None = None
        while len(out) < limit:
            page = self._http.get_json(
                "/v1/tasks",
                state=state.value if state else None,
                name=name,
                limit=limit - len(out),
                cursor=cursor,
            )
            out.extend(TaskStatus.model_validate(item) for item in page["items"])
            cursor = page.get("next_cursor")
            if not cursor or not page["items"]:
                break
        return out[:limit]

    def get_events(self, execution_id: str) -> list[Event]:
        out: list[Event] = []
        after = 0
        while True:
            page = self._http.get_json(f"{self._task_path(execution_id)}/events", after=after)
            items = [Event.model_validate(item) for item in page["items"]]
            if not items:
                return out
            out.extend(items)
            after = int(page.get("next_after") or items[-1].seq)

    def get_alerts(self, execution_id: str) -> list[Alert]:
        items = self._http.get_json(f"{self._task_path(execution_id)}/alerts")
        return [Alert.model_validate(item) for item in items]

    def _memory(self, namespace: str) -> Memory:
        return RemoteMemory(self._http, namespace)

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _task_path(execution_id: str) -> str:
        if not isinstance(execution_id, str) or not execution_id:
            raise UserError(f"execution id: got {execution_id!r}; use an Execution's .id")
        return f"/v1/tasks/{quote(execution_id, safe='')}"

    def _check_open(self) -> None:
        if self._closed:
            raise UserError("this Aesoperator client is closed; create a new one")

    def _status(self, resp: httpx.Response) -> TaskStatus:
        status = TaskStatus.model_validate(resp.json())
        if status.result is not None:
            self._localize(status.result)
        return status

    def _localize(self, result: TaskResult) -> None:
        """Download the result's files into the cache; point their ``path`` there."""
        folder = (self._cache / result.execution_id).resolve()
        for art in result.files:
            target = (folder / art.name).resolve()
            if not target.is_relative_to(folder) or target == folder:
                continue  # a name that would escape the cache: not ours to write
            art.path = str(target)
            if target.is_file() and target.stat().st_size == art.size:
                continue
            with contextlib.suppress(AesoperatorError, OSError, httpx.HTTPError):
                self._download(result.execution_id, art.name, target)

    def _download(self, execution_id: str, name: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        path = f"{self._task_path(execution_id)}/artifacts/{quote(name, safe='/')}"
        with self._http.client.stream("GET", path) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise self._http.error(resp)
            with partial.open("wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
        partial.replace(target)

    def close(self) -> None:
        """Stop the progress streams and close the connection (the server keeps running)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            watchers = list(self._watchers.values())
        for watcher in watchers:
            watcher.stopped.set()
        self._callbacks.shutdown(wait=False)
        self._http.client.close()

"""What an execution produces: its result, the records inside it, and the ``Output`` task code
returns. ``execution.py`` holds the lifecycle around them (states, status, timeline).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import UserError
from .skills._registry import skill_report_writer


def utcnow() -> datetime:
    return datetime.now(UTC)


AlertKind = Literal["down", "recovered", "latency", "ssl_expiring", "ssl_invalid", "keyword"]
Severity = Literal["info", "warning", "critical"]


class Alert(BaseModel):
    """Something a monitoring task wants the caller to know about now."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(
        description="What happened: the monitor's `down`, `recovered`, `latency`, "
        "`ssl_expiring`, `ssl_invalid`, `keyword`; the scheduler's `schedule_missed`; "
        "or any name a handler gives."
    )
    severity: Severity = Field(default="warning", description="`info`, `warning` or `critical`.")
    message: str = Field(description="One line for a person, naming the target and the cause.")
    metrics: dict[str, Any] = Field(
        default_factory=dict,
        description="The measurements behind it (e.g. `total_ms`, `consecutive_failures`, "
        "`threshold_ms`); keys depend on `kind`.",
    )
    url: str | None = Field(
        default=None, description="The URL it is about; None when it is not about one."
    )
    at: datetime = Field(
        default_factory=utcnow,
        description="When it happened (UTC): the check's time for a monitor, else creation.",
    )
    incident_id: str | None = Field(
        default=None,
        description="The monitor's incident: the opening alert and its `recovered` share it; "
        "None outside monitoring.",
    )


class ActionRecord(BaseModel):
    """One recorded step of an execution."""

    index: int = Field(description="Its place in the execution, from 0, in start order.")
    name: str = Field(description="The step's name, as given to `ctx.action(name, ...)`.")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="The keyword arguments given to `ctx.action` (e.g. `url`); secrets redacted.",
    )
    started_at: datetime = Field(description="When the step began (UTC).")
    finished_at: datetime | None = Field(
        default=None, description="When it ended (UTC); None if it never ended."
    )
    ok: bool | None = Field(
        default=None,
        description="True if it ended without an exception, False if one escaped it; "
        "None while open or if it never ended.",
    )
    error: str | None = Field(
        default=None, description="`Type: message` of the exception that ended it, if any."
    )
    attempts: int = Field(
        default=1, description="How many times it ran: more than 1 after retries."
    )


class Artifact(BaseModel):
    """A file an execution produced, kept in the data directory."""

    name: str = Field(
        description="Its relative name, as given to `ctx.add_file` (`report.html`, "
        "`pages/1.html`); unique within the execution."
    )
    path: str = Field(
        description="Where to read it: a file in the data directory (a local cache copy for "
        "a remote client); in the REST API, the URL path to download it from."
    )
    media_type: str = Field(
        default="application/octet-stream",
        description="Its MIME type: the one given, else guessed from the name.",
    )
    size: int = Field(default=0, description="Its size in bytes when it was added.")


class Output(BaseModel):
    """What a handler or skill may return; plain values work too.

    A ``str`` becomes ``content``; any other JSON-able value becomes ``data``.
    """

    content: str = ""
    summary: str = ""
    data: Any = None


class TaskResult(BaseModel):
    """The outcome of a completed execution."""

    execution_id: str = Field(description="The execution that produced it.")
    task_name: str = Field(description="The task's `name`.")
    planner: str = Field(
        description="What served the task: `handler:NAME`, `skill:NAME`, `plan` or `llm`."
    )
    content: str = Field(
        default="", description="The main text output, usually Markdown (a report, an answer)."
    )
    summary: str = Field(default="", description="A short summary of the output; may be empty.")
    data: Any = Field(
        default=None,
        description="Structured output (JSON-able): a handler's return value, the "
        "`output_schema` object of an LLM task; None when there is none.",
    )
    files: list[Artifact] = Field(
        default_factory=list,
        description="The files it produced (`ctx.add_file`), in the order added; also "
        "`result.artifacts`.",
    )
    pages_visited: int = Field(
        default=0, description="Pages fetched, the count `max_pages` limits."
    )
    actions: list[ActionRecord] = Field(
        default_factory=list, description="The recorded steps (`ctx.action`), by `index`."
    )
    alerts: list[Alert] = Field(
        default_factory=list, description="Every alert the execution raised, in order."
    )
    started_at: datetime | None = Field(
        default=None, description="When the task's code started running (UTC)."
    )
    finished_at: datetime | None = Field(
        default=None, description="When the task's code returned or stopped (UTC)."
    )
    duration_seconds: float = Field(
        default=0.0, description="Wall-clock seconds the task's code ran."
    )
    usage: dict[str, Any] = Field(
        default_factory=dict,
        description="Counters added with `ctx.add_usage`: the LLM's `input_tokens`, "
        "`output_tokens`, `cost_usd` (US dollars), `llm_calls`; empty if none.",
    )

    @property
    def artifacts(self) -> list[Artifact]:
        return self.files

    def save_report(self, path: str | Path) -> Path:
        """Write the result as a report; the format follows the file's extension.

        A skill may provide its own report writer (the data skill writes Excel workbooks);
        otherwise ``.md``/``.txt`` get ``content``, ``.json`` the whole result, ``.html`` a
        self-contained page, and a produced file with the same extension is copied.
        """
        target = Path(path).expanduser()
        if target.is_dir() or str(path).endswith(("/", os.sep)):
            raise UserError(
                f"save_report: {str(path)!r} is a directory; give a file path such as "
                f"{str(target / ('report' + self._report_suffix()))!r}"
            )
        for art in self.files:  # asked to save a file onto itself: it is already there
            if target.exists() and Path(art.path).exists() and target.samefile(art.path):
                return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._write(target)
        except OSError as exc:
            raise UserError(f"save_report({str(path)!r}): {exc.strerror or exc}") from None
        return target

    def _write(self, target: Path) -> None:
        suffix = target.suffix.lower()
        if self.planner.startswith("skill:"):
            writer = skill_report_writer(self.planner.removeprefix("skill:"))
            if writer is not None and writer(self, target):
                return
        for art in self.files:
            if Path(art.name).suffix.lower() == suffix and Path(art.path).exists():
                shutil.copyfile(art.path, target)
                return
        if suffix in (".md", ".markdown", ".txt", ""):
            target.write_text(self.content or self.summary or _pretty(self.data), encoding="utf-8")
        elif suffix == ".json":
            target.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        elif suffix in (".html", ".htm"):
            target.write_text(self._html(), encoding="utf-8")
        else:
            raise UserError(
                f"save_report: no writer for {suffix!r} files of a {self.planner} result; "
                "use .md, .json or .html"
            )

    def _html(self) -> str:
        """The markdown content as a real HTML document (clickable citations, escaped text);
        a result with data only shows its summary and the data as JSON."""
        from html import escape

        from ._report_html import markdown_to_html

        heading = next(
            (ln[2:].strip() for ln in self.content.splitlines() if ln.startswith("# ")), ""
        )
        title = heading or self.task_name
        if self.content.strip():
            return markdown_to_html(self.content, title=title, summary=self.summary)
        page = markdown_to_html("", title=title, summary=self.summary)
        data = _pretty(self.data)
        if not data:
            return page
        return page.replace("</body>", f"<pre>{escape(data)}</pre>\n</body>", 1)

    def _report_suffix(self) -> str:
        """The extension of the execution's own report, else ``.md``."""
        for art in self.files:
            if Path(art.name).stem == "report" and Path(art.name).suffix:
                return Path(art.name).suffix
        return ".md"

    def __str__(self) -> str:
        head = self.summary or self.content or _pretty(self.data)
        if len(head) > 400:
            head = head[:397] + "..."
        return (
            f"TaskResult({self.task_name!r} via {self.planner}, {self.duration_seconds:.2f}s, "
            f"{self.pages_visited} pages, {len(self.actions)} actions): {head}"
        )


def _pretty(data: Any) -> str:
    if data is None:
        return ""
    try:
        return json.dumps(data, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(data)

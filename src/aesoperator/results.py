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

    kind: str
    severity: Severity = "warning"
    message: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    url: str | None = None
    at: datetime = Field(default_factory=utcnow)
    incident_id: str | None = None


class ActionRecord(BaseModel):
    """One recorded step of an execution."""

    index: int
    name: str
    details: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime
    finished_at: datetime | None = None
    ok: bool | None = None
    error: str | None = None
    attempts: int = 1


class Artifact(BaseModel):
    """A file an execution produced, kept in the data directory."""

    name: str
    path: str
    media_type: str = "application/octet-stream"
    size: int = 0


class Output(BaseModel):
    """What a handler or skill may return; plain values work too.

    A ``str`` becomes ``content``; any other JSON-able value becomes ``data``.
    """

    content: str = ""
    summary: str = ""
    data: Any = None


class TaskResult(BaseModel):
    """The outcome of a completed execution."""

    execution_id: str
    task_name: str
    planner: str = Field(description="What served the task: 'handler:NAME', 'skill:NAME', 'llm'.")
    content: str = ""
    summary: str = ""
    data: Any = None
    files: list[Artifact] = Field(default_factory=list)
    pages_visited: int = 0
    actions: list[ActionRecord] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float = 0.0
    usage: dict[str, Any] = Field(default_factory=dict)

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

"""The summarize skill's work: validate inputs, read URLs through ``ctx.web``, summarise."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from ...errors import ValidationError
from ...results import Output
from ...text.summarize import Format

if TYPE_CHECKING:
    from ...runtime.context import TaskContext

_URL = re.compile(r"^https?://\S+$")
_POOL_FROM_URLS = 20
_KNOWN = {"text", "max_length", "format", "query"}


def _bad(name: str, value: Any, fix: str) -> ValidationError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ValidationError(f"Task.inputs.{name}: got {shown}; {fix}")


def parse(inputs: dict[str, Any]) -> tuple[list[str], int, Format, str | None]:
    unknown = sorted(set(inputs) - _KNOWN)
    if unknown:
        raise _bad(
            unknown[0], inputs[unknown[0]], f"unknown input; summarize takes {sorted(_KNOWN)}"
        )
    if "text" not in inputs:
        raise ValidationError(
            "Task.inputs.text: required input is missing; give the text to summarise, "
            "a list of texts, or a list of URLs"
        )
    text = inputs["text"]
    items = [text] if isinstance(text, str) else text
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise _bad("text", text, "use a string, a list of strings, or a list of http(s) URLs")
    max_length = inputs.get("max_length", 1000)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise _bad("max_length", max_length, "use a whole number of characters >= 1")
    fmt: Format
    raw_fmt = inputs.get("format", "paragraph")
    if raw_fmt == "paragraph":
        fmt = "paragraph"
    elif raw_fmt == "bullets":
        fmt = "bullets"
    else:
        raise _bad("format", raw_fmt, "use 'paragraph' or 'bullets'")
    query = inputs.get("query")
    if query is not None and not isinstance(query, str):
        raise _bad("query", query, "use a string")
    return items, max_length, fmt, query


async def summarize_task(ctx: TaskContext) -> Output:
    from ...text.summarize import shortest_sentence, summarize
    from ...text.units import candidate_texts

    items, max_length, fmt, query = parse(ctx.inputs)
    texts: list[str] = []
    sources: list[dict[str, Any]] = []
    for item in items:
        if _URL.match(item.strip()):
            ctx.check_cancelled()
            page = await ctx.web.fetch(item.strip())
            if len(items) >= _POOL_FROM_URLS:
                extracted = await ctx.web.extract(page)
            else:
                # A few pages: a thread beats starting the web layer's extraction processes.
                from ...web.extract import extract_page

                with ctx.action("extract", url=page.url, where="thread"):
                    extracted = await asyncio.to_thread(
                        extract_page, page.body, page.url, page.headers.get("content-type")
                    )
            # The page's prose blocks, one paragraph each: no sentence crosses a heading, an
            # item or a table, and code and navigation are left out.
            prose = candidate_texts(extracted.blocks)
            texts.append(prose if extracted.blocks else extracted.text)
            sources.append({"url": page.url, "title": extracted.title, "status": page.status})
        else:
            texts.append(item)
    ctx.progress(50, "ranking sentences")
    async with ctx.action("summarize", chars=sum(len(t) for t in texts), max_length=max_length):
        result = await asyncio.to_thread(
            summarize,
            texts,
            max_length=max_length,
            format=fmt,
            query=query,
        )
    ctx.progress(100, "summary written")
    note = ""
    if not result and any(t.strip() for t in texts):
        # Whole sentences or nothing: say why it is nothing (the summary itself must hold the
        # bound, so the reason goes in data and the timeline).
        shortest = shortest_sentence(texts)
        note = (
            f"no whole sentence of the input fits in max_length={max_length}: the shortest "
            f"has {shortest} characters; raise max_length"
            if shortest
            else "the input has no whole sentence to summarise (only headings, lists, tables "
            "or code); give prose text or pages with paragraphs"
        )
        ctx.progress(100, f"empty summary: {note}")
    return Output(
        content=result,
        summary=result,
        data={
            "max_length": max_length,
            "format": fmt,
            "length": len(result),
            "input_chars": sum(len(t) for t in texts),
            "sources": sources,
            **({"note": note} if note else {}),
        },
    )

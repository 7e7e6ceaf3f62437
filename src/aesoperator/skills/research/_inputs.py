"""Validation of the research skill's inputs: every error names the input, the value and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from ...errors import PolicyViolation, ValidationError
from ...task import TaskConfig

Depth = Literal["overview", "technical"]
PROVIDERS = ("site", "sitemap", "wikipedia", "arxiv", "duckduckgo")
_KNOWN = {"topic", "depth", "focus_areas", "start_date", "max_results", "start_urls", "search"}


@dataclass(frozen=True)
class SearchSpec:
    """One discovery source: a provider and where it lives."""

    provider: str
    base_url: str
    search_path: str | None = None  # for "site": e.g. "/search?q={query}"


@dataclass(frozen=True)
class ResearchInputs:
    topic: str
    depth: Depth
    focus_areas: list[str]
    start_date: str | None
    max_results: int
    start_urls: list[str]
    search: list[SearchSpec] = field(default_factory=list)


def _bad(name: str, value: Any, fix: str) -> ValidationError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ValidationError(f"Task.inputs.{name}: got {shown}; {fix}")


def _default_provider(domain: str) -> SearchSpec:
    if domain == "wikipedia.org" or domain.endswith(".wikipedia.org"):
        host = domain if domain != "wikipedia.org" else "en.wikipedia.org"
        return SearchSpec("wikipedia", f"https://{host}")
    if domain == "arxiv.org" or domain.endswith(".arxiv.org"):
        return SearchSpec("arxiv", "https://export.arxiv.org")
    return SearchSpec("site", f"https://{domain}")


_DEFAULT_BASE = {
    "wikipedia": "https://en.wikipedia.org",
    "arxiv": "https://export.arxiv.org",
    "duckduckgo": "https://html.duckduckgo.com",
}


def _search_specs(value: Any, config: TaskConfig) -> list[SearchSpec]:
    items = value if isinstance(value, list) else [value]
    specs: list[SearchSpec] = []
    fix = (
        f"use a provider name {list(PROVIDERS)} or {{'provider': 'site', "
        "'base_url': 'https://example.org'}"
    )
    for item in items:
        if isinstance(item, str):
            item = {"provider": item}
        if not isinstance(item, dict):
            raise _bad("search", value, fix)
        unknown = set(item) - {"provider", "base_url", "search_path"}
        if unknown:
            raise _bad("search", item, f"unknown keys {sorted(unknown)}; {fix}")
        provider = item.get("provider")
        if provider not in PROVIDERS:
            raise _bad("search", item, fix)
        base = item.get("base_url") or _DEFAULT_BASE.get(provider)
        if base is None:
            if not config.allowed_domains:
                raise _bad(
                    "search", item, f"provider {provider!r} needs a base_url (or allowed_domains)"
                )
            specs.extend(
                SearchSpec(provider, f"https://{d}", item.get("search_path"))
                for d in config.allowed_domains
            )
            continue
        if not isinstance(base, str) or not base.startswith(("http://", "https://")):
            raise _bad("search", item, "base_url must be an http(s) URL")
        path = item.get("search_path")
        if path is not None and (not isinstance(path, str) or "{query}" not in path):
            raise _bad(
                "search", item, "search_path must contain '{query}', e.g. '/search?q={query}'"
            )
        specs.append(SearchSpec(provider, base.rstrip("/"), path))
    return specs


def parse_inputs(inputs: dict[str, Any], config: TaskConfig) -> ResearchInputs:
    """Check and normalise inputs; raise ``ValidationError`` before any request is made."""
    from ...web.policy import Policy

    unknown = sorted(set(inputs) - _KNOWN)
    if unknown:
        raise _bad(
            unknown[0], inputs[unknown[0]], f"unknown input; research takes {sorted(_KNOWN)}"
        )
    topic = inputs.get("topic")
    if topic is None:
        raise ValidationError(
            "Task.inputs.topic: required input is missing; give the subject to research, "
            "e.g. inputs={'topic': 'quantum computing'}"
        )
    if not isinstance(topic, str) or not topic.strip():
        raise _bad("topic", topic, "use a non-empty string such as 'quantum computing'")
    from ...text._tokens import terms

    if not terms(topic):
        raise _bad(
            "topic", topic,
            "it has only stop words (such as 'the', 'and', 'of'), nothing to rank pages by; "
            "name the subject, e.g. 'JSON functions' instead of 'what is it'",
        )  # fmt: skip
    depth = inputs.get("depth", "overview")
    if depth not in ("overview", "technical"):
        raise _bad("depth", depth, "use 'overview' or 'technical'")
    focus = inputs.get("focus_areas", [])
    if isinstance(focus, str):
        raise _bad("focus_areas", focus, f"use a list of strings, e.g. [{focus!r}]")
    if not isinstance(focus, list) or not all(isinstance(f, str) and f.strip() for f in focus):
        raise _bad("focus_areas", focus, "use a list of non-empty strings, e.g. ['hardware']")
    start_date = inputs.get("start_date")
    if start_date is not None:
        try:
            start_date = date.fromisoformat(str(start_date)).isoformat()
        except ValueError:
            raise _bad("start_date", start_date, "use an ISO date such as '2023-01-01'") from None
    default_results = 8 if depth == "overview" else 15
    max_results = inputs.get("max_results", default_results)
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise _bad("max_results", max_results, "use a whole number >= 1")
    start_urls = inputs.get("start_urls", [])
    if isinstance(start_urls, str):
        start_urls = [start_urls]
    if not isinstance(start_urls, list) or not all(isinstance(u, str) for u in start_urls):
        raise _bad("start_urls", start_urls, "use a list of http(s) URLs")
    policy = Policy.from_config(config)
    checked: list[str] = []
    for url in start_urls:
        try:
            checked.append(policy.check_url(url))
        except PolicyViolation as exc:
            raise _bad(
                "start_urls",
                url,
                f"refused by the task's policy ({exc.rule}): {exc}. Add its domain to "
                "TaskConfig.allowed_domains or remove the URL",
            ) from None
    search = _search_specs(inputs["search"], config) if "search" in inputs else []
    if not checked and not search:
        if config.allowed_domains:
            search = [_default_provider(d) for d in config.allowed_domains]
        else:
            search = [SearchSpec("duckduckgo", _DEFAULT_BASE["duckduckgo"])]
    for spec in search:
        try:
            policy.check_url(spec.base_url + "/")
        except PolicyViolation as exc:
            raise _bad(
                "search",
                spec.base_url,
                f"the {spec.provider} provider's base_url is refused by the task's policy "
                f"({exc.rule}); add its domain to TaskConfig.allowed_domains or set base_url",
            ) from None
    return ResearchInputs(
        topic=topic.strip(),
        depth=depth,
        focus_areas=[f.strip() for f in focus],
        start_date=start_date,
        max_results=max_results,
        start_urls=checked,
        search=search,
    )

"""Bad input gets an error that names the field, the value and what is allowed."""

from __future__ import annotations

import pytest

from aesoperator import Task, TaskConfig, ValidationError


@pytest.mark.parametrize(
    ("kwargs", "field", "shown"),
    [
        ({"max_pages": -1}, "max_pages", "-1"),
        ({"max_pages": 0}, "max_pages", "0"),
        ({"max_pages": "ten"}, "max_pages", "'ten'"),
        ({"max_pages": 2.5}, "max_pages", "2.5"),
        ({"max_duration_seconds": 0}, "max_duration_seconds", "0"),
        ({"max_duration_seconds": "soon"}, "max_duration_seconds", "'soon'"),
        ({"max_memory_mb": -5}, "max_memory_mb", "-5"),
        ({"requests_per_second": 0}, "requests_per_second", "0"),
        ({"concurrent_requests": 0}, "concurrent_requests", "0"),
        ({"max_retries": -1}, "max_retries", "-1"),
        ({"retry_delay_seconds": -1}, "retry_delay_seconds", "-1"),
        ({"viewport_width": 0}, "viewport_width", "0"),
        ({"require_https": "maybe"}, "require_https", "'maybe'"),
        ({"allowed_domains": ["https://wikipedia.org"]}, "allowed_domains", "wikipedia.org"),
        ({"allowed_domains": ["wikipedia.org/wiki"]}, "allowed_domains", "wikipedia.org/wiki"),
        ({"allowed_domains": ["http:wikipedia.org"]}, "allowed_domains", "http:wikipedia.org"),
        ({"blocked_domains": ["ads.com:8080"]}, "blocked_domains", "ads.com:8080"),
        ({"blocked_domains": "ads.com"}, "blocked_domains", "ads.com"),
        ({"allowed_domains": ["bad_-.com!"]}, "allowed_domains", "bad_-.com!"),
        ({"max_page": 10}, "max_page", "10"),
    ],
)
def test_config_errors_name_field_and_value(kwargs: dict, field: str, shown: str) -> None:
    with pytest.raises(ValidationError) as info:
        TaskConfig(**kwargs)
    message = str(info.value)
    assert f"TaskConfig.{field}" in message
    assert shown in message


def test_domain_errors_say_how_to_fix() -> None:
    # The fix is derived from the value: the domain that was meant, not the value echoed.
    with pytest.raises(ValidationError, match=r"a URL, not a domain; use 'en.wikipedia.org' in"):
        TaskConfig(allowed_domains=["https://en.wikipedia.org/wiki/AI"])
    with pytest.raises(ValidationError, match=r"must be a list of domains, e.g. \['x.org'\]"):
        TaskConfig(allowed_domains="https://x.org/a")
    with pytest.raises(ValidationError, match=r"e.g. \['a.org', 'b.org'\]"):
        TaskConfig(blocked_domains="a.org, https://B.org/x")
    with pytest.raises(ValidationError, match=r"has a port; .* use 'x.org' in allowed_domains"):
        TaskConfig(allowed_domains=["x.org:8080"])
    with pytest.raises(ValidationError, match=r"bare domain such as 'wikipedia.org'"):
        TaskConfig(allowed_domains=["https:///"])  # nothing to derive a domain from


def test_unknown_field_says_remove_or_check_spelling() -> None:
    with pytest.raises(ValidationError, match=r"unknown field.*check the spelling"):
        TaskConfig(max_page=10)


def test_domains_are_normalised() -> None:
    cfg = TaskConfig(allowed_domains=["Wikipedia.ORG.", "*.arxiv.org", "bücher.de", "127.0.0.1"])
    assert cfg.allowed_domains == ["wikipedia.org", "arxiv.org", "xn--bcher-kva.de", "127.0.0.1"]


def test_every_tasks_md_field_is_accepted_and_kept() -> None:
    cfg = TaskConfig(
        max_pages=10, max_duration_seconds=300, max_memory_mb=1024,
        allowed_domains=["wikipedia.org"], blocked_domains=["ads.com"], require_https=True,
        viewport_width=1920, viewport_height=1080, user_agent="...", max_retries=3,
        retry_delay_seconds=1, requests_per_second=2, concurrent_requests=1,
    )  # fmt: skip
    assert (cfg.max_pages, cfg.max_duration_seconds, cfg.max_memory_mb) == (10, 300, 1024)
    assert cfg.allowed_domains == ["wikipedia.org"] and cfg.blocked_domains == ["ads.com"]
    assert cfg.require_https and (cfg.viewport_width, cfg.viewport_height) == (1920, 1080)
    assert cfg.user_agent == "..." and cfg.max_retries == 3 and cfg.retry_delay_seconds == 1
    assert cfg.requests_per_second == 2 and cfg.concurrent_requests == 1


def test_memory_scope_must_be_known() -> None:
    with pytest.raises(ValidationError, match=r"Task.memory_scope: got 'forever'.*'session'"):
        Task(name="t", memory_scope="forever")


def test_nested_config_errors_name_the_path() -> None:
    with pytest.raises(ValidationError, match=r"max_pages: got -3"):
        Task(name="t", config={"max_pages": -3})


def test_task_name_and_inputs_are_checked() -> None:
    with pytest.raises(ValidationError, match=r"Task.name"):
        Task(name="")
    with pytest.raises(ValidationError, match=r"JSON-serialisable"):
        Task(name="t", inputs={"when": object()})


def test_config_is_immutable() -> None:
    cfg = TaskConfig()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        cfg.max_pages = 5  # type: ignore[misc]

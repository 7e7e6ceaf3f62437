"""Relevance, the report and bad input, on a small site shaped like Sphinx documentation.

The pages reproduce, reduced, the structure of Django's documentation (BSD licence): a contents
page, a general index, articles under ``/topics/`` and ``/ref/``, and ``/_modules/`` source
listings that repeat the topic's word without explaining it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aesoperator import Aesoperator, Task
from aesoperator.errors import FetchError, PolicyViolation, ValidationError
from local_research import local_research
from serving import PagesHandler, site

_SIDEBAR = (
    '<div class="sphinxsidebar"><ul><li><a href="/contents.html">Contents</a></li>'
    '<li><a href="/genindex.html">Index</a></li><li><a href="/py-modindex.html">Module Index'
    "</a></li></ul></div>"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><title>{title} | Django documentation</title></head><body>"
        f'{_SIDEBAR}<div class="body" role="main"><h1>{title}</h1>{body}</div></body></html>'
    )


def _paras(*sentences: str) -> str:
    return "".join(f"<p>{s}</p>" for s in sentences)


PAGES: dict[str, str] = {
    "/index.html": _page(
        "Django documentation",
        "<ul>"
        '<li>Performance: <a href="/topics/cache.html">Caching</a> | '
        '<a href="/topics/performance.html">Performance and optimization</a></li>'
        '<li>Sessions: <a href="/topics/http/sessions.html">How to use sessions</a></li>'
        '<li>Utilities: <a href="/ref/utils.html">Django Utils</a> | '
        '<a href="/_modules/django/utils/functional.html">functional source</a></li>'
        '<li>Forms: <a href="/topics/forms.html">Working with forms</a></li>'
        '<li>Security: <a href="/topics/auth/index.html">User authentication in Django</a></li>'
        '<li>Deployment: <a href="/howto/deployment/checklist.html">Deployment checklist</a></li>'
        "</ul>",
    ),
    "/contents.html": _page(
        "Django documentation contents",
        "<ul>"
        + "".join(
            f'<li><a href="{p}">{t}</a></li>'
            for p, t in [
                ("/topics/cache.html", "Django’s cache framework"),
                ("/topics/performance.html", "Performance and optimization"),
                ("/topics/http/sessions.html", "How to use sessions"),
                ("/ref/utils.html", "Django Utils"),
                ("/topics/forms.html", "Working with forms"),
            ]
        )
        + "</ul>",
    ),
    "/genindex.html": _page(
        "Index",
        "<table><tr><td><ul>"
        '<li><a href="/topics/cache.html#cache-key">cache key</a></li>'
        '<li><a href="/ref/utils.html#cached-property">cached_property (class)</a></li>'
        '<li><a href="/topics/http/sessions.html#cached-db">cached_db session backend</a></li>'
        "</ul></td></tr></table>",
    ),
    "/py-modindex.html": _page(
        "Python Module Index",
        '<table><tr><td><a href="/topics/cache.html">django.core.cache</a></td>'
        "<td>Django's cache framework.</td></tr></table>",
    ),
    "/topics/cache.html": _page(
        "Django’s cache framework",
        _paras(
            "A fundamental trade-off in dynamic websites is that they are dynamic, so each "
            "request makes the server compute the page again.",
            "Caching saves the result of an expensive calculation so that you do not have to "
            "perform the calculation next time.",
            "Django comes with a robust cache system that lets you save dynamic pages so they "
            "do not have to be calculated for each request.",
            "The cache framework offers different levels of cache granularity: you can cache "
            "the output of specific views, only the pieces that are difficult to produce, or "
            "your entire site.",
            "Memcached is an entirely memory-based cache server, and the fastest cache backend "
            "Django natively supports.",
            "Database caching stores cached data in a table of your database, which works well "
            "when you have a fast, well-indexed database server.",
            "The per-view cache decorator cache_page caches the output of individual views for "
            "the given number of seconds.",
            # A continuation cut from its start, as extraction leaves after a code span.
            "of the cache backend, and the cache timeout of the cache defaults to 300 seconds in "
            "the cache settings.",
        ),
    ),
    "/topics/performance.html": _page(
        "Performance and optimization",
        _paras(
            "This document provides an overview of techniques and tools that can help get your "
            "Django code running more efficiently, faster, and using fewer system resources.",
            "Caching an expensive result is often the best way to save time, and Django's cache "
            "framework helps with that.",
            "Not all performance improvements are worth the effort, so measure before you "
            "change your code.",
        ),
    ),
    "/topics/http/sessions.html": _page(
        "How to use sessions",
        _paras(
            "Django provides full support for anonymous sessions that store arbitrary data on "
            "a per-site-visitor basis.",
            "Sessions are implemented through a piece of middleware that must be enabled in "
            "your settings.",
            "For persistent, cached data, set the session engine to the cached database "
            "backend, which writes through to the database.",
        ),
    ),
    "/ref/utils.html": _page(
        "Django Utils",
        _paras(
            "This document covers all stable modules in django.utils that are intended for "
            "public use.",
            "The cached_property decorator caches the result of a method with a single self "
            "argument as a property.",
            "Most of the modules in django.utils are designed for internal use, and only the "
            "documented parts are stable.",
        ),
    ),
    "/_modules/django/utils/functional.html": _page(
        "Source code for django.utils.functional",
        "<pre>class cached_property:\n    # cache cache cache cached caching cache\n"
        "    def __init__(self, func):\n        self.func = func  # cache</pre>"
        + _paras("Caching cache cached caches cache the cache of the cache for caching."),
    ),
    "/topics/forms.html": _page(
        "Working with forms",
        _paras(
            "Handling forms is a complex business, and Django simplifies much of that work.",
            "A form's fields validate the submitted data and clean it for your code to use.",
        ),
    ),
    # Sphinx names a chapter's main page index.html: an article, however hub-like its URL.
    "/topics/auth/index.html": _page(
        "User authentication in Django",
        _paras(
            "Django comes with a user authentication system that handles user accounts, groups, "
            "permissions and cookie-based user sessions.",
            "This section of the documentation explains how the default implementation works "
            "out of the box, as well as how to extend and customize it to suit your needs.",
            "The Django authentication system handles both authentication and authorization, "
            "which are related but different concerns that people often confuse.",
            "Briefly, authentication verifies a user is who they claim to be, and authorization "
            "determines what an authenticated user is allowed to do in your project.",
            "Here the term authentication is used to refer to both tasks, because the system "
            "provides the tools for each of them in the same place.",
            "The auth system consists of users, permissions, groups, a configurable password "
            "hashing system, forms and view tools for logging in users or restricting content.",
            "It also offers a pluggable backend system, so that a project can check the "
            "credentials of its users against another source such as a directory service.",
            "The authentication system in Django aims to be very generic and does not provide "
            "some features commonly found in web authentication systems.",
            "Solutions for some of these common problems, such as password strength checking, "
            "throttling of login attempts and authentication against third parties, are "
            "available in third-party packages.",
            "Authentication support is bundled as a Django contrib module in django.contrib.auth, "
            "and by default the required configuration is already included in the settings "
            "generated by the startproject command.",
            "The settings consist of two items listed in your INSTALLED_APPS setting and two "
            "items in your MIDDLEWARE setting, which associate users with requests using "
            "sessions.",
            "With these settings in place, running the migrate command creates the necessary "
            "database tables for auth related models and permissions for any models defined in "
            "your installed apps.",
            "Using the authentication system is described in a separate document, and so is "
            "customizing authentication when the defaults do not fit what your project needs.",
        ),
    ),
    # Its sentences never repeat the title's words: they say "deploying", "production".
    "/howto/deployment/checklist.html": _page(
        "Deployment checklist",
        _paras(
            "The Internet is a hostile environment.",
            "Before deploying your Django project, you should take some time to review your "
            "settings, with security, performance, and operations in mind.",
            "Django includes many security features, and some are built-in and always enabled.",
            "Performance optimizations are another category of trade-offs with convenience.",
        ),
    ),
    "/empty.html": "<!doctype html><html><head><title>Nothing</title></head><body></body></html>",
    "/robots.txt": "",
}


class _Docs(PagesHandler):
    pages = PAGES

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/robots.txt":
            rules = "User-agent: *\nDisallow: /private/\n"
            return self.reply(200, rules, "text/plain")
        if path.startswith("/private/"):
            return self.reply(200, PAGES["/topics/cache.html"])
        super().do_GET()


@pytest.fixture(scope="module")
def docs() -> Iterator[str]:
    with site(_Docs) as url:
        yield url


def _task(topic: str, start: str, **config: Any) -> Task:
    return local_research(topic, start, name="research_docs", **{"max_pages": 12, **config})


@pytest.fixture(scope="module")
def caching(aesop: Aesoperator, docs: str) -> Any:
    return aesop.execute_task(_task("caching", f"{docs}/index.html"))


def test_the_article_is_cited_first_and_index_pages_never(caching: Any, docs: str) -> None:
    cited = [s["url"].removeprefix(docs) for s in caching.data["sources"]]
    assert cited[0] == "/topics/cache.html", cited
    assert not {"/index.html", "/contents.html", "/genindex.html", "/py-modindex.html"} & set(cited)
    # A source-code listing repeats the word; it explains nothing.
    assert "/_modules/django/utils/functional.html" not in cited
    assert "/topics/forms.html" not in cited
    read = {p["url"].removeprefix(docs): p for p in caching.data["pages_read"]}
    assert read["/topics/cache.html"]["hub"] is False  # a page inside /topics/ is an article


def test_a_chapters_index_html_article_is_cited(aesop: Aesoperator, docs: str) -> None:
    result = aesop.execute_task(_task("user authentication", f"{docs}/index.html"))
    cited = [s["url"].removeprefix(docs) for s in result.data["sources"]]
    assert cited[:1] == ["/topics/auth/index.html"], cited
    read = {p["url"].removeprefix(docs): p for p in result.data["pages_read"]}
    assert read["/topics/auth/index.html"]["hub"] is False
    assert read["/index.html"]["hub"] is True  # the site's home page stays a listing


def test_a_page_chosen_by_its_title_is_summarised_by_its_opening(
    aesop: Aesoperator, docs: str
) -> None:
    result = aesop.execute_task(_task("deployment checklist", f"{docs}/index.html"))
    cited = [s["url"].removeprefix(docs) for s in result.data["sources"]]
    assert cited[:1] == ["/howto/deployment/checklist.html"], cited
    assert "The Internet is a hostile environment. [1]" in result.content


def test_findings_are_grouped_under_the_sources_titles(caching: Any) -> None:
    headings = re.findall(r"^### (.+)$", caching.content, re.M)
    assert headings and headings[0] == "Django’s cache framework", headings
    assert all(len(h.split()) >= 2 for h in headings), headings  # never "Cache", "Read"
    for line in caching.content.splitlines():
        if line.startswith("- "):
            assert re.search(r"\.\s\[\d+\]$", line), line  # a whole sentence, then its citation
            assert not line.startswith("- of "), line  # never a cut continuation
    assert len(re.findall(r"\[\d+\]", caching.content.split("## Summary")[1].split("##")[0])) >= 1


def test_html_report_is_a_document_with_clickable_citations(caching: Any, tmp_path: Path) -> None:
    html = caching.save_report(tmp_path / "r.html").read_text()
    assert html.startswith("<!doctype html>") and "<pre" not in html
    assert "<title>Research: caching</title>" in html
    cites = set(re.findall(r'href="#(source-\d+)"', html))
    targets = set(re.findall(r'id="(source-\d+)"', html))
    assert cites and cites == targets
    assert "Django’s cache framework</a>" in html and "undated" in html
    assert not re.search(r"<(?:script|link|img|iframe)\b", html)  # no scripts, no assets
    assert "Django&#x27;s cache framework" in html or "Django’s" in html


def test_html_escapes_what_the_markdown_carries(tmp_path: Path) -> None:
    from aesoperator.results import TaskResult

    content = (
        "# Research: <b>tags</b>\n\n## Summary\n\nUse `<script>` & friends carefully. [1] "
        "Not a citation [7].\n\n## Sources\n\n"
        "1. [A <i>title</i>](http://x.org/a?b=1&c=2) — 2024-01-01\n"
        "2. [Evil](javascript:alert(1)) — undated\n"
    )
    result = TaskResult(execution_id="e", task_name="t", planner="skill:research", content=content)
    html = result.save_report(tmp_path / "r.html").read_text()
    assert "<b>" not in html and "<i>" not in html and "<script>" not in html
    assert "<code>&lt;script&gt;</code> &amp; friends" in html
    assert 'href="http://x.org/a?b=1&amp;c=2"' in html
    assert 'href="javascript' not in html
    assert '<sup>[<a class="cite" href="#source-1">1</a>]</sup>' in html
    assert "citation [7]" in html  # no such source: left as text


def test_citation_navigates_in_a_real_browser(caching: Any, tmp_path: Path) -> None:
    from aesoperator.web._browser import chromium_path

    playwright = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine")
    path = caching.save_report(tmp_path / "r.html")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(path.as_uri())
            page.locator("a.cite").first.click()
            assert page.evaluate("location.hash") == "#source-1"
            entry = page.locator("#source-1")
            assert "Django’s cache framework" in entry.inner_text()
            assert entry.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
        finally:
            browser.close()


# Bad input: each ends with a message naming what to change; nothing stays running.


def test_a_topic_of_stop_words_is_refused_before_any_request(aesop: Aesoperator, docs: str) -> None:
    with pytest.raises(ValidationError, match=r"inputs\.topic.*stop words"):
        aesop.execute_task(_task("what is the", f"{docs}/index.html"))


def test_an_empty_site_completes_and_says_what_to_change(aesop: Aesoperator, docs: str) -> None:
    execution = aesop.execute_task_async(_task("caching", f"{docs}/empty.html"))
    result = execution.result(timeout=60)
    assert execution.status().state == "completed"
    assert result.data["sources"] == []
    for text in (result.summary, result.content):
        assert "Too little relevant material" in text
        assert "1 page read" in text and "max_pages" in text and "start_urls" in text


def test_a_start_url_that_404s_fails_naming_start_urls(aesop: Aesoperator, docs: str) -> None:
    execution = aesop.execute_task_async(_task("caching", f"{docs}/missing.html"))
    with pytest.raises(FetchError, match=r"HTTP 404.*inputs\.start_urls"):
        execution.result(timeout=60)
    assert execution.status().state == "failed"


def test_every_page_refused_by_the_policy_fails_naming_the_fix(
    aesop: Aesoperator, docs: str
) -> None:
    execution = aesop.execute_task_async(
        _task("caching", f"{docs}/private/cache.html", respect_robots_txt=True)
    )
    with pytest.raises(PolicyViolation, match=r"refused.*(allowed_domains|start_urls)"):
        execution.result(timeout=60)
    assert execution.status().state == "failed"


def _reference(title: str, *sentences: str) -> str:
    """A page shaped like the PostgreSQL manual's (DocBook: no <main>, a navigation header)."""
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        '<div class="navheader"><a href="/index.html">Home</a></div>'
        f'<div class="sect1"><h1>{title}</h1>{_paras(*sentences)}</div></body></html>'
    )


_SPACES = {
    "/index.html": _reference(
        "PostgreSQL documentation",
        'See <a href="/manage-ag-tablespaces.html">23.6. Tablespaces</a>, '
        '<a href="/sql-createtablespace.html">CREATE TABLESPACE</a>, '
        '<a href="/sql-altertablespace.html">ALTER TABLESPACE</a>, '
        '<a href="/sql-droptablespace.html">DROP TABLESPACE</a>, '
        '<a href="/storage-file-layout.html">Tablespace Directories</a> and '
        '<a href="/sql-createtable.html">CREATE TABLE</a>.',
    ),
    "/storage-file-layout.html": _reference(
        "73.2. Tablespace Directories",
        "Each table and index is stored in a separate file under the data directory.",
        "Temporary files live in a directory of the default tablespace, and tablespaces keep "
        "symbolic links to their tablespace directories.",
        "The files of a relation are split into segments of one gigabyte.",
    ),
    "/manage-ag-tablespaces.html": _reference(
        "23.6. Tablespaces",
        "Tablespaces allow administrators to define locations where the files of a database "
        "are stored.",
        "A tablespace is created with a location on disk, and tables can then be placed in "
        "the tablespace.",
        "Tablespaces help when a partition runs out of space or when some tables are used "
        "heavily and belong on a faster disk.",
    ),
    "/sql-createtablespace.html": _reference(
        "CREATE TABLESPACE",
        "CREATE TABLESPACE registers a new tablespace for the database cluster.",
        "The tablespace name must be distinct from the name of any existing tablespace.",
        "A tablespace lets administrators place the files of tables in another directory.",
    ),
    "/sql-altertablespace.html": _reference(
        "ALTER TABLESPACE",
        "ALTER TABLESPACE changes the definition of a tablespace.",
        "The tablespace owner or a superuser can rename the tablespace or set its options.",
        "The options of a tablespace set the planner costs for tables in the tablespace.",
    ),
    "/sql-droptablespace.html": _reference(
        "DROP TABLESPACE",
        "DROP TABLESPACE removes a tablespace from the system.",
        "A tablespace can only be dropped by its owner, and it must be empty of all tables.",
        "A tablespace may still hold tables of other databases, so check every database.",
    ),
    "/sql-createtable.html": _reference(
        "CREATE TABLE",
        "CREATE TABLE creates a new, initially empty table in the current database.",
        "The TABLESPACE clause names the tablespace in which the new table is created.",
    ),
}


def test_pages_about_an_operation_on_the_topic_come_after_the_topics_own(
    aesop: Aesoperator,
) -> None:
    """ALTER and DROP pages carry the topic's words as much as its own pages do; a reader
    asking about tablespaces wants the chapter and CREATE TABLESPACE first."""
    with site(_SPACES) as url:
        result = aesop.execute_task(_task("tablespaces", f"{url}/index.html"))
        cited = [s["url"].removeprefix(url) for s in result.data["sources"]]
        assert cited[:2] == ["/manage-ag-tablespaces.html", "/sql-createtablespace.html"], cited
        asked = aesop.execute_task(_task("drop tablespace", f"{url}/index.html"))
        cited = [s["url"].removeprefix(url) for s in asked.data["sources"]]
        assert cited[:1] == ["/sql-droptablespace.html"], cited  # asked for: not demoted


def test_the_summary_speaks_from_the_best_sources_only(aesop: Aesoperator) -> None:
    """An overview gives findings to its three best sources, and its summary quotes those
    only: a fourth page's sentence in the summary was most often a neighbouring page's."""
    with site(_SPACES) as url:
        result = aesop.execute_task(_task("tablespaces", f"{url}/index.html"))
    summary = result.content.split("## Summary", 1)[1].split("## Findings", 1)[0]
    assert {"1", "2"} <= set(re.findall(r"\[(\d+)\]", summary)), summary
    assert len(result.data["sources"]) == 3, result.content  # four pages pass the cut-off

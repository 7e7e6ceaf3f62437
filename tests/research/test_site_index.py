"""A site's own index page leads the crawl to a topic its table of contents never names.

The pages reproduce, reduced, the structure of the PostgreSQL manual (PostgreSQL licence): a
table of contents of chapters whose titles do not name the topic, and a DocBook
``bookindex.html`` listing every term with a link to the page that explains it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aesoperator import Aesoperator
from local_research import local_research
from serving import site

_CHAPTERS = [f"Chapter {i} on server administration part {i}" for i in range(1, 31)]


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f'<div class="chapter"><h1>{title}</h1>{body}</div></body></html>'
    )


PAGES: dict[str, str] = {
    "/index.html": _page(
        "PostgreSQL Documentation",
        "<dl class='toc'>"
        + "".join(f'<dt><a href="/ch{i}.html">{t}</a></dt>' for i, t in enumerate(_CHAPTERS))
        + '<dt><a href="/bookindex.html">Index</a></dt></dl>',
    ),
    "/bookindex.html": _page(
        "Index",
        "<dl>"
        + "".join(
            f'<dt><a class="indexterm" href="{href}">{term}</a></dt>'
            for term, href in [
                ("data type, numeric", "/ch3.html"),
                ("data directory", "/ch4.html"),
                ("LISTEN", "/sql-listen.html"),
                ("NOTIFY", "/sql-notify.html"),
                ("UNLISTEN", "/sql-listen.html"),
                ("VACUUM", "/ch5.html"),
            ]
        )
        + "</dl>",
    ),
    "/sql-listen.html": _page(
        "LISTEN",
        "<p>LISTEN registers the current session as a listener on the notification channel "
        "named channel.</p><p>If the current session is already registered as a listener for "
        "this notification channel, nothing is done.</p><p>Whenever the command NOTIFY channel "
        "is invoked, all the sessions listening on that channel are notified.</p>",
    ),
    "/sql-notify.html": _page(
        "NOTIFY",
        "<p>The NOTIFY command sends a notification event together with an optional payload "
        "string to each client application that has previously executed LISTEN channel for "
        "the specified channel name in the current database.</p><p>Notifications are visible "
        "to all users.</p>",
    ),
    **{
        f"/ch{i}.html": _page(
            t,
            "<p>This chapter describes how to configure and run the database server, and how "
            "its settings are kept in the configuration file.</p>",
        )
        for i, t in enumerate(_CHAPTERS)
    },
}


@pytest.fixture(scope="module")
def manual() -> Iterator[str]:
    with site(PAGES) as url:
        yield url


def test_the_book_index_is_read_early_and_leads_to_the_topics_pages(
    aesop: Aesoperator, manual: str
) -> None:
    result = aesop.execute_task(
        local_research("LISTEN and NOTIFY", f"{manual}/index.html", name="research_site_index",
                       max_pages=8)
    )  # fmt: skip
    read = [p["url"].removeprefix(manual) for p in result.data["pages_read"]]
    assert "/bookindex.html" in read, read
    cited = [s["url"].removeprefix(manual) for s in result.data["sources"]]
    assert cited and cited[0] in ("/sql-listen.html", "/sql-notify.html"), cited
    assert "/bookindex.html" not in cited

"""Generate the offline demo site: a few hundred interlinked pages with realistic structure.

Articles by topic and focus area (with dates, bylines, related links, sidebars), paginated
topic indexes, tag and archive pages, a search page, a login page, sitemap.xml and robots.txt.
All text comes from ``_vocab.py`` (written for this project). Output is deterministic for a
given seed, and ``manifest.json`` records what every article is about: the labels of the
research quality bench.

    python examples/demo_site/generate.py OUT_DIR [--articles 540] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from html import escape
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _vocab import AUTHORS, FILLER, OPENERS, TITLE_TEMPLATES, TOPICS  # type: ignore
else:
    from ._vocab import AUTHORS, FILLER, OPENERS, TITLE_TEMPLATES, TOPICS

SITE_NAME = "The Open Science Ledger"
PER_INDEX_PAGE = 20


@dataclass
class Article:
    slug: str
    path: str
    title: str
    topic: str
    area: str
    date: str | None
    author: str
    summary: str
    paragraphs: list[list[str]]
    related: list[str]


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:70]


def _areas(topic: str) -> dict[str, dict[str, list[str]]]:
    return TOPICS[topic]["areas"]  # type: ignore[return-value]


def _make_articles(n: int, rng: random.Random) -> list[Article]:
    combos = [(t, a) for t in TOPICS for a in _areas(t)]
    articles: list[Article] = []
    start = date(2018, 1, 1)
    used_slugs: set[str] = set()
    for i in range(n):
        topic, area = combos[i % len(combos)]
        spec = _areas(topic)[area]
        subject = rng.choice(spec["subjects"])
        words = area.replace("-", " ")
        title = rng.choice(TITLE_TEMPLATES).format(
            subject=subject,
            subject_lower=subject[0].lower() + subject[1:]
            if not subject[:2].isupper()
            else subject,
            area_words=words,
            topic_lower=str(TOPICS[topic]["title"]).lower(),
        )
        title = title[0].upper() + title[1:]
        slug = _slugify(title)
        while slug in used_slugs:
            slug = f"{slug}-{rng.randint(2, 99)}"
        used_slugs.add(slug)
        day = start + timedelta(days=rng.randint(0, 365 * 7 + 300))
        dated = rng.random() > 0.1  # about one article in ten carries no date at all
        paragraphs: list[list[str]] = []
        opener = rng.choice(OPENERS).format(
            subject=subject, subject_lower=subject[0].lower() + subject[1:]
        )
        claims = [f"{s} {p}." for s in spec["subjects"] for p in spec["predicates"]]
        rng.shuffle(claims)
        # Lead with the article's own subject, then claims of the same focus area.
        own = [c for c in claims if c.startswith(subject)]
        body = own[:2] + [c for c in claims if not c.startswith(subject)][: rng.randint(6, 10)]
        # A passing mention of another topic makes ranking non-trivial.
        other_topic, other_area = rng.choice(combos)
        other = _areas(other_topic)[other_area]
        mention = f"{rng.choice(other['subjects'])} {rng.choice(other['predicates'])}."
        body.insert(rng.randint(3, len(body)), mention)
        paragraphs.append([opener, *body[:3]])
        rest = body[3:]
        while rest:
            take, rest = rest[:3], rest[3:]
            if rng.random() < 0.5:
                take.append(rng.choice(FILLER))
            paragraphs.append(take)
        year = day.year if dated else "undated"
        articles.append(
            Article(
                slug=slug,
                path=f"/articles/{year}/{slug}.html",
                title=title,
                topic=topic,
                area=area,
                date=day.isoformat() if dated else None,
                author=rng.choice(AUTHORS),
                summary=body[0],
                paragraphs=paragraphs,
                related=[],
            )
        )
    by_area: dict[tuple[str, str], list[Article]] = {}
    for art in articles:
        by_area.setdefault((art.topic, art.area), []).append(art)
    for art in articles:
        same = [a.path for a in by_area[(art.topic, art.area)] if a is not art]
        anywhere = [a.path for a in articles if a.topic != art.topic]
        art.related = rng.sample(same, min(4, len(same))) + rng.sample(anywhere, 1)
    return articles


def _page(title: str, body: str, *, head: str = "", description: str = "") -> str:
    nav = "".join(
        f'<li><a href="/topics/{slug}/">{escape(str(spec["title"]))}</a></li>'
        for slug, spec in TOPICS.items()
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)} | {SITE_NAME}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="{escape(description)}">
<link rel="stylesheet" href="/static/site.css">
{head}
</head>
<body>
<header class="site-header">
  <a class="logo" href="/">{SITE_NAME}</a>
  <nav class="main-nav"><ul>{nav}<li><a href="/archive/">Archive</a></li>
  <li><a href="/search">Search</a></li><li><a href="/about.html">About</a></li>
  <li><a href="/login">Sign in</a></li></ul></nav>
  <form action="/search" method="get" class="search"><input name="q" placeholder="Search">
  <button>Go</button></form>
</header>
<div class="cookie-banner">We use cookies to improve your experience.
 <a href="/privacy.html">Privacy policy</a></div>
<main>
{body}
</main>
<footer class="site-footer">
  <p>© {SITE_NAME}. Text written for the Aesoperator demo and free to reuse (MIT).</p>
  <ul><li><a href="/about.html">About us</a></li><li><a href="/contact.html">Contact</a></li>
  <li><a href="/privacy.html">Privacy</a></li><li><a href="/terms.html">Terms of use</a></li>
  <li><a href="/login">Sign in</a></li><li><a href="/register">Create account</a></li></ul>
</footer>
</body>
</html>
"""


def _article_html(art: Article, by_path: dict[str, Article], popular: list[Article]) -> str:
    topic_title = str(TOPICS[art.topic]["title"])
    paras = []
    for i, para in enumerate(art.paragraphs):
        text = " ".join(escape(s) for s in para)
        if i == 1 and art.related:
            rel = by_path[art.related[0]]
            text += f' Read more in <a href="{rel.path}">{escape(rel.title)}</a>.'
        paras.append(f"<p>{text}</p>")
    related = "".join(f'<li><a href="{p}">{escape(by_path[p].title)}</a></li>' for p in art.related)
    pop = "".join(f'<li><a href="{a.path}">{escape(a.title)}</a></li>' for a in popular)
    head = ""
    time_html = ""
    if art.date:
        head = f'<meta property="article:published_time" content="{art.date}T09:00:00Z">'
        time_html = f'<time datetime="{art.date}">{art.date}</time>'
    tag = art.area.replace("-", " ")
    return _page(
        art.title,
        f"""<article>
<p class="breadcrumbs"><a href="/">Home</a> › <a href="/topics/{art.topic}/">{topic_title}</a>
 › <a href="/tags/{art.area}/">{escape(tag)}</a></p>
<h1>{escape(art.title)}</h1>
<p class="byline">By {escape(art.author)} {time_html}</p>
{"".join(paras)}
<p class="tags">Tags: <a href="/tags/{art.area}/">{escape(tag)}</a>,
 <a href="/topics/{art.topic}/">{escape(topic_title.lower())}</a></p>
</article>
<aside class="related"><h2>Related articles</h2><ul>{related}</ul></aside>
<aside class="popular"><h2>Most read</h2><ul>{pop}</ul></aside>
<section class="comments"><h2>Comments</h2><p>Comments are closed.</p>
<p><a href="/login">Sign in</a> to join the discussion.</p></section>""",
        head=head,
        description=art.summary,
    )


def _listing(title: str, items: list[Article], extra: str = "") -> str:
    lis = "".join(
        f'<li><a href="{a.path}">{escape(a.title)}</a> <span class="date">{a.date or ""}</span>'
        f"<p>{escape(a.summary)}</p></li>"
        for a in items
    )
    return _page(title, f'<h1>{escape(title)}</h1><ul class="listing">{lis}</ul>{extra}')


def _pager(base: str, page: int, pages: int) -> str:
    links = []
    if page > 1:
        prev = base if page == 2 else f"{base}page/{page - 1}/"
        links.append(f'<a rel="prev" href="{prev}">Newer</a>')
    if page < pages:
        links.append(f'<a rel="next" href="{base}page/{page + 1}/">Older</a>')
    return f'<nav class="pager">{" ".join(links)}</nav>'


def _write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    if path.endswith("/"):
        target = target / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def _paginated(root: Path, base: str, title: str, items: list[Article]) -> int:
    pages = max(1, -(-len(items) // PER_INDEX_PAGE))
    for page in range(1, pages + 1):
        chunk = items[(page - 1) * PER_INDEX_PAGE : page * PER_INDEX_PAGE]
        path = base if page == 1 else f"{base}page/{page}/"
        label = title if page == 1 else f"{title} (page {page})"
        _write(root, path, _listing(label, chunk, _pager(base, page, pages)))
    return pages


def build_site(out: str | Path, *, articles: int = 540, seed: int = 7) -> dict[str, object]:
    """Write the site under ``out``; return (and save as manifest.json) what is where."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    arts = _make_articles(articles, rng)
    by_path = {a.path: a for a in arts}
    newest = sorted(arts, key=lambda a: a.date or "0000", reverse=True)
    count = 0
    for art in arts:
        _write(root, art.path, _article_html(art, by_path, rng.sample(arts, 5)))
        count += 1
    for topic, spec in TOPICS.items():
        items = [a for a in newest if a.topic == topic]
        count += _paginated(root, f"/topics/{topic}/", f"{spec['title']}: latest articles", items)
        for area in _areas(topic):
            tagged = [a for a in items if a.area == area]
            count += _paginated(root, f"/tags/{area}/", f"Tagged: {area.replace('-', ' ')}", tagged)
    years = sorted({a.date[:4] for a in arts if a.date}, reverse=True)
    for year in years:
        items = [a for a in newest if a.date and a.date.startswith(year)]
        count += _paginated(root, f"/archive/{year}/", f"Archive {year}", items)
    archive = "".join(f'<li><a href="/archive/{y}/">{y}</a></li>' for y in years)
    _write(root, "/archive/", _page("Archive", f"<h1>Archive</h1><ul>{archive}</ul>"))
    topics_html = "".join(
        f'<section><h2><a href="/topics/{t}/">{escape(str(s["title"]))}</a></h2><ul>'
        + "".join(
            f'<li><a href="{a.path}">{escape(a.title)}</a></li>'
            for a in [x for x in newest if x.topic == t][:6]
        )
        + "</ul></section>"
        for t, s in TOPICS.items()
    )
    _write(root, "/", _page(SITE_NAME, f"<h1>Latest science news</h1>{topics_html}"))
    login = (
        '<h1>Sign in</h1><form method="post" action="/login"><label>Email <input name="email">'
        '</label><label>Password <input type="password" name="password"></label>'
        '<button>Sign in</button></form><p><a href="/register">Create an account</a></p>'
    )
    _write(root, "/login", _page("Sign in", login))
    _write(root, "/register", _page("Create account", login.replace("Sign in", "Register")))
    for name, heading in (("about", "About us"), ("contact", "Contact"), ("privacy", "Privacy"),
                          ("terms", "Terms of use")):  # fmt: skip
        _write(root, f"/{name}.html", _page(heading, f"<h1>{heading}</h1><p>{SITE_NAME} is a "
               "demo publication generated for offline examples.</p>"))  # fmt: skip
    count += 8
    _write(root, "/static/site.css", "body{font-family:sans-serif;max-width:60em;margin:auto}")
    urls = ["/", *(a.path for a in arts)]
    sitemap = "".join(f"<url><loc>{{base}}{u}</loc></url>" for u in urls)
    (root / "sitemap.xml.tmpl").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{sitemap}</urlset>',
        encoding="utf-8",
    )
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n", encoding="utf-8")
    search_index = [
        {"path": a.path, "title": a.title, "summary": a.summary, "date": a.date} for a in arts
    ]
    (root / "search-index.json").write_text(json.dumps(search_index), encoding="utf-8")
    manifest = {
        "site": SITE_NAME,
        "pages": count,
        "articles": [
            {k: v for k, v in asdict(a).items() if k in ("path", "title", "topic", "area", "date")}
            for a in arts
        ],
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--articles", type=int, default=540)
    parser.add_argument("--seed", type=int, default=7)
    opts = parser.parse_args()
    manifest = build_site(opts.out, articles=opts.articles, seed=opts.seed)
    print(f"wrote {manifest['pages']} pages to {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

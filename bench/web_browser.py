"""Browser throughput: ours vs a raw Playwright loop, 100 local pages, 4 tabs.

Both drive the same Chromium executable, headless, against the same generated site served by
a separate local process, waiting for ``load`` on each page:

* raw: one browser, one context, 4 tabs, each ``page.goto(url)`` + ``page.content()`` over its
  share of the URLs; Chromium fetches everything itself, no policy;
* tuned: the raw loop with our Chromium switches (RenderDocument off...), shown so the
  cost of the gate itself stays visible;
* ours: ``ctx.web.fetch(url, mode="browser")`` through the public API with
  ``concurrent_requests=4``, 4 fetches in flight; every request of every page passes the
  policy gate, DNS pinning and the rate/robots machinery (images, fonts, media blocked: the
  default for reading tasks).

    python bench/web_browser.py [--pages 100] [--tabs 4] [--rounds 3] [--isolation process]
    python bench/web_browser.py --site postgresql|django [--pages 100]

Generated site: two comparisons, text pages (like for like: nothing for our defaults to block),
then the same pages with ``--images`` images each (ours skips images by default, the raw loop
loads them). ``--site``: a real documentation site (bench/_docsites.py: Debian's HTML served
by nginx), the first ``--pages`` HTML files on disk in sorted order, with their own
stylesheets, scripts and images. Rounds alternate raw, tuned, ours; prints pages/s for each
and the ratio, best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sites import SiteServer, build_site

_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip


def _our_flags() -> list[str]:
    """Our Chromium switches, minus the ones that keep it off the network by itself."""
    from aesoperator.web._browser import chromium_args

    return [a for a in chromium_args() if not a.startswith("--host-resolver-rules")]


async def _raw(urls: list[str], tabs: int, args: list[str]) -> float:
    from playwright.async_api import async_playwright

    from aesoperator.web._browser import chromium_path

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=args)
        context = await browser.new_context()
        pages = [await context.new_page() for _ in range(tabs)]
        t0 = time.perf_counter()

        async def tab_loop(page, share):  # type: ignore[no-untyped-def]
            for url in share:
                await page.goto(url, wait_until="load")
                await page.content()

        await asyncio.gather(*(tab_loop(p, urls[i::tabs]) for i, p in enumerate(pages)))
        elapsed = time.perf_counter() - t0
        await browser.close()
    return elapsed


def run_ours(urls: list[str], tabs: int, data_dir: str, isolation: str) -> float:
    from aesoperator import Aesoperator, Task, TaskConfig

    with Aesoperator(data_dir=data_dir, isolation=isolation, pool_size=1) as aesop:  # type: ignore[arg-type]

        @aesop.handler("browse")
        async def browse(ctx, urls):  # type: ignore[no-untyped-def]
            await ctx.web.fetch(urls[0], mode="browser")  # launch the browser before timing
            t0 = time.perf_counter()
            queue = list(reversed(urls[1:]))

            async def worker() -> None:
                while queue:
                    await ctx.web.fetch(queue.pop(), mode="browser")

            await asyncio.gather(*(worker() for _ in range(tabs)))
            return {"seconds": time.perf_counter() - t0}

        config = TaskConfig(
            concurrent_requests=tabs, max_pages=len(urls) + 1, allow_private_network=True,
            max_memory_mb=4096,  # the runtime sums RSS over Chromium's processes (shared pages too)
            allowed_domains=["127.0.0.1"],
        )  # fmt: skip
        result = aesop.execute_task(Task(name="browse", inputs={"urls": urls}, config=config))
    return float(result.data["seconds"])


def _add_images(root: Path, per_page: int) -> None:
    """Give every article ``per_page`` distinct images (~20 KB each), as real pages have."""
    png = bytes.fromhex("89504e470d0a1a0a") + bytes(20_000)
    (root / "img").mkdir(exist_ok=True)
    for page in (root / "a").iterdir():
        tags = []
        for k in range(per_page):
            name = f"{page.stem}-{k}.png"
            (root / "img" / name).write_bytes(png)
            tags.append(f'<img src="/img/{name}" width=200 height=100>')
        html = page.read_text(encoding="utf-8")
        page.write_text(html.replace("<article>", "<article>" + "".join(tags), 1), "utf-8")


def _compare(root: Path, args: argparse.Namespace, tmp: str, label: str) -> None:
    names = sorted(p.name for p in (root / "a").iterdir())
    with SiteServer(root) as site:
        _rounds([site.url(f"/a/{n}") for n in names[: args.pages + 1]], args, tmp, label)


def _real_site(args: argparse.Namespace, tmp: str) -> None:
    from _docsites import DocSite

    with DocSite(args.site) as site:
        root = site.spec.root
        # Fixed order: the site's HTML files sorted by path (the first one warms the browser).
        paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html"))
        urls = [site.url(p) for p in paths[: args.pages + 1]]
        _rounds(urls, args, tmp, f"{args.site} ({site.base})")


def _rounds(urls: list[str], args: argparse.Namespace, tmp: str, label: str) -> None:
    best: dict[str, float] = {}
    for r in range(args.rounds):
        raw = asyncio.run(_raw(urls[1:], args.tabs, _ARGS))
        tuned = asyncio.run(_raw(urls[1:], args.tabs, _ARGS + _our_flags()))
        ours = run_ours(urls, args.tabs, tempfile.mkdtemp(dir=tmp), args.isolation)
        for name, secs in (("raw", raw), ("tuned", tuned), ("ours", ours)):
            rate = args.pages / secs
            print(f"{label}: round {r + 1} {name:5s} {args.pages} pages {secs:6.2f} s "
                  f"{rate:6.1f} p/s")  # fmt: skip
            best[name] = max(best.get(name, 0.0), rate)
    print(f"{label}: {args.pages} pages, {args.tabs} tabs: raw Playwright {best['raw']:.1f} "
          f"pages/s, ours {best['ours']:.1f} pages/s, ours / raw = "
          f"{best['ours'] / best['raw']:.2f}x")  # fmt: skip
    print(f"{label}: the raw loop with our Chromium switches {best['tuned']:.1f} pages/s: "
          f"ours / that = {best['ours'] / best['tuned']:.2f}x (what the gate costs)\n")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--tabs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=3, help="images per page, second comparison")
    ap.add_argument("--isolation", choices=["process", "inline"], default="process")
    ap.add_argument("--site", choices=["postgresql", "django"], help="a real documentation site")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.site:
            _real_site(args, tmp)
            return
        root = build_site(Path(tmp) / "site", pages=max(args.pages + 1, 120))
        # Like for like: text pages with one stylesheet, nothing for our defaults to block.
        _compare(root, args, tmp, "text pages")
        if args.images:
            # Pages with images: ours skips them by default (block_resources), raw loads them.
            _add_images(root, args.images)
            _compare(root, args, tmp, f"pages with {args.images} images")


if __name__ == "__main__":
    main()

"""The dashboard in a real headless Chromium against a served instance: sign-in, submit,
live progress, cancel, a research report's citations, the refusals and the CSP."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from aesoperator import Task, TaskConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helper module beside this file

import _dash
from _dash import Served, shot

from serving import free_port

browser = _dash.browser  # the module's fixtures
served = _dash.served


def _signed_in(browser: Any, served: Served, token: str | None = None) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(served.url + "/")
    page.fill("#token", token or served.token)
    page.click("button[type=submit]")
    page.wait_for_selector("table.executions")
    return page


def test_sign_in_page_sets_a_strict_http_only_cookie_and_a_csp(
    browser: Any,
    served: Served,
) -> None:
    answer = httpx.get(served.url + "/")
    csp = answer.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert 'name="token"' in answer.text
    page = _signed_in(browser, served)
    cookie = next(c for c in page.context.cookies() if c["name"] == "aesop_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert page.evaluate("document.cookie") == ""  # page scripts never see the session
    shot(page, "executions-empty")
    page.click("header .logout button")
    page.wait_for_selector("#token")
    assert not [c for c in page.context.cookies() if c["name"] == "aesop_session"]
    page.close()


def test_a_wrong_token_is_refused(browser: Any, served: Served) -> None:
    page = browser.new_page()
    page.goto(served.url + "/")
    page.fill("#token", "aesop_" + "x" * 43)
    with page.expect_response("**/ui/login") as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    assert "refused" in page.inner_text(".error")
    assert not [c for c in page.context.cookies() if c["name"] == "aesop_session"]
    shot(page, "sign-in-refused")
    # A forged cookie does not open the app either, and the API answers 401 to it.
    page.context.add_cookies([{"name": "aesop_session", "value": "aesop_" + "y" * 43,
                               "url": served.url}])  # fmt: skip
    page.goto(served.url + "/")
    page.wait_for_selector("#token")
    page.close()


def test_submit_from_the_page_and_watch_progress_live(
    browser: Any,
    served: Served,
) -> None:
    page = _signed_in(browser, served)
    page.click("nav a[data-nav=submit]")
    page.fill("#task-name", "steps")
    page.fill("#task-inputs", json.dumps({"steps": 6, "pause": 0.5}))
    page.fill("#task-config", "{}")
    shot(page, "submit")
    page.click("#submit-simple")
    page.wait_for_selector("h1:text('steps')")
    seen: set[float] = set()
    # The same page, never reloaded: the progress shown must take several values and end at 100.
    page.evaluate("window.__same_page = true")
    for _ in range(400):
        value = float(page.get_attribute("[data-progress]", "data-progress") or 0)
        seen.add(value)
        if page.locator(".state[data-state=completed]").count():
            break
        page.wait_for_timeout(50)
    page.wait_for_selector(".state[data-state=completed]")
    assert page.evaluate("window.__same_page") is True
    assert len({v for v in seen if 0 < v < 100}) >= 2, seen
    assert page.get_attribute("[data-progress]", "data-progress") == "100"
    kinds = page.eval_on_selector_all("tr[data-kind]", "rows => rows.map(r => r.dataset.kind)")
    assert kinds.count("action") == 6 and "log" in kinds and "state" in kinds
    durations = page.eval_on_selector_all(
        "tr[data-kind=action] td:last-child", "cells => cells.map(c => c.textContent)"
    )
    assert all(d.endswith(" s") for d in durations), durations  # each step shows its duration
    log = page.locator("tr[data-kind=log]")
    assert "onerror=alert(1)>" in log.inner_text() and log.locator("img").count() == 0
    image = page.locator(".shots img")  # the artifact, fetched with the session cookie
    image.wait_for()
    expect(image).to_have_js_property("naturalWidth", 2)
    shot(page, "execution-steps")
    page.click("text=← Executions")
    page.wait_for_selector("tr[data-state=completed]")
    page.close()


def test_cancel_from_the_page(browser: Any, served: Served) -> None:
    execution = served.client.execute_task_async(
        Task(name="steps", inputs={"steps": 200, "pause": 0.5})
    )
    page = _signed_in(browser, served)
    page.wait_for_selector(f"tr[data-id='{execution.id}']")
    page.click(f"tr[data-id='{execution.id}'] a")
    page.wait_for_selector(".state[data-state=running]")
    page.click("#cancel")
    page.wait_for_selector(".state[data-state=cancelled]")
    assert served.client.get_task_status(execution.id).state.value == "cancelled"
    shot(page, "execution-cancelled")
    # Re-run: the same task again, as a new execution whose page opens
    page.click("#rerun")
    # (expect polls through Playwright; page.url alone is not refreshed between calls)
    expect(page).not_to_have_url(re.compile(execution.id), timeout=30_000)
    again = page.url.rsplit("/", 1)[-1]
    assert again != execution.id
    status = served.client.get_task_status(again)
    assert status.name == "steps"
    served.client.cancel_task(again)
    page.close()


def test_research_report_citations_lead_to_their_sources(
    browser: Any,
    served: Served,
) -> None:
    task = Task(
        name="research_demo", skill="research",
        inputs={"topic": "quantum computing", "start_urls": [served.site]},
        config=TaskConfig(allowed_domains=["127.0.0.1"], allow_private_network=True,
                          max_pages=12, max_retries=0),
    )  # fmt: skip
    result = served.client.execute_task(task)
    assert "[1]" in result.content
    page = _signed_in(browser, served)
    page.goto(f"{served.url}/#/tasks/{result.execution_id}")
    frame = page.frame_locator("iframe.report")
    cite = frame.locator("a.cite").first
    cite.wait_for()
    target = cite.get_attribute("href")
    assert target and target.startswith("#source-")
    cite.click()
    assert frame.locator(target).count() == 1
    assert frame.locator(f"{target} a[href^='http']").count() == 1
    assert page.locator("tr[data-kind=page]").count() >= 1
    shot(page, "execution-research")
    page.close()


def test_report_frame_and_api_keep_projects_apart(served: Served) -> None:
    result = served.client.execute_task(Task(name="steps", inputs={"steps": 1, "pause": 0}))
    mine = httpx.Client(base_url=served.url, cookies={"aesop_session": served.token})
    theirs = httpx.Client(base_url=served.url, cookies={"aesop_session": served.other_token})
    ok = mine.get(f"/ui/tasks/{result.execution_id}/report")
    assert ok.status_code == 200
    assert "sandbox" in ok.headers["content-security-policy"]
    assert "script" not in ok.headers["content-security-policy"].replace("-src", "")
    assert theirs.get(f"/ui/tasks/{result.execution_id}/report").status_code == 404
    assert httpx.get(f"{served.url}/ui/tasks/{result.execution_id}/report").status_code == 401
    assert mine.get("/ui/tasks/..%2F..%2Fetc/report").status_code == 404
    assert mine.get("/ui/static/..%2F_routes.py").status_code == 404
    # Cross-site sign-in forms are refused before the token is even looked at.
    forged = httpx.post(served.url + "/ui/login", data={"token": served.token},
                        headers={"Origin": "https://evil.example"})  # fmt: skip
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    for junk in ("aesop_x\r\nX-Evil: 1", "é" * 10, "a" * 5000):
        answer = httpx.post(served.url + "/ui/login", data={"token": junk})
        assert answer.status_code == 401 and "set-cookie" not in answer.headers


def _sales(path: Path, start_month: int) -> Path:
    rows = ["Order ID,Order Date,Customer,Product,Region,Qty,Amount"]
    for i in range(60):
        day = f"2024-{start_month + i % 3:02d}-{1 + i % 27:02d}"
        rows.append(f"O{start_month}-{i},{day},C{i % 9},Grinder,North,{1 + i % 3},$"
                    f"{19.5 * (1 + i % 4):.2f}")  # fmt: skip
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_data_and_monitor_results_show_their_tables_and_charts(
    browser: Any, served: Served, tmp_path: Path
) -> None:
    # A file name with markup in it: shown as text, never as markup.
    files = [
        str(_sales(tmp_path / "q1<img src=x onerror=alert(1)>.csv", 1)),
        str(_sales(tmp_path / "q2.csv", 4)),
    ]
    data = served.client.execute_task_async(
        Task(name="sales", skill="data", inputs={"data_files": files, "metrics": ["revenue"]})
    )
    watch = served.client.execute_task_async(
        Task(name="watch", skill="monitor", inputs={"url": served.site, "checks": ["latency"]},
             config=TaskConfig(max_duration_seconds=3, requests_per_second=5,
                               allow_private_network=True))
    )  # fmt: skip
    page = _signed_in(browser, served)
    for execution, name in ((data, "data"), (watch, "monitor")):
        execution.wait(60)
        page.goto(f"{served.url}/#/tasks/{execution.id}")
        frame = page.frame_locator("iframe.report")
        frame.locator("svg").first.wait_for()
        shot(page, f"execution-{name}")
        assert frame.locator("table").count() >= 1
        if name == "data":
            assert frame.locator("img").count() == 0
            assert "q1<img src=x onerror=alert(1)>.csv" in frame.locator("p").first.inner_text()
            assert frame.locator("svg rect").count() >= 2  # the chart's bars
        else:
            assert frame.locator("h3:text-is('Incidents')").count() == 1
            assert frame.locator("svg polyline, svg circle").count() >= 1  # the latency line
    page.close()


def test_memory_browser_reads_and_writes_through_the_api(browser: Any, served: Served) -> None:
    api = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.token}"})
    assert api.put("/v1/memory/shop/last", json={"value": {"price": "<i>9</i>"}}).status_code == 204
    page = _signed_in(browser, served)
    page.click("nav a[data-nav=memory]")
    page.fill("#namespace", "shop")
    page.click("text=Open")
    page.click("td:text('last')")
    expect(page.locator("#mem-value")).to_have_value(re.compile("price"))
    assert json.loads(page.input_value("#mem-value")) == {"price": "<i>9</i>"}
    page.fill("#mem-value", '{"price": 10}')
    # The field shows the new value before the save: wait for the save itself.
    with page.expect_response(lambda r: r.request.method == "PUT" and "/v1/memory/" in r.url):
        page.click("#mem-save")
    expect(page.locator("#mem-value")).to_have_value(re.compile(r'"price": 10'))
    assert api.get("/v1/memory/shop/last").json()["value"] == {"price": 10}
    shot(page, "memory")
    page.close()


def test_cookie_requests_that_change_things_need_the_ui_header(served: Served) -> None:
    jar = {"aesop_session": served.token}
    body = {"name": "steps", "inputs": {"steps": 1, "pause": 0}}
    forged = httpx.post(served.url + "/v1/tasks", json=body, cookies=jar)
    assert forged.status_code == 403 and "X-Aesop-UI" in forged.json()["detail"]
    assert httpx.get(served.url + "/v1/tasks", cookies=jar).status_code == 200
    ok = httpx.post(served.url + "/v1/tasks", json=body, cookies=jar, headers={"X-Aesop-UI": "1"})
    assert ok.status_code == 201
    bad = httpx.get(served.url + "/v1/tasks", cookies={"aesop_session": "aesop_" + "z" * 43})
    assert bad.status_code == 401


def test_the_timeline_shows_a_refused_request_with_its_rule(browser: Any, served: Served) -> None:
    task = Task(name="off_limits", inputs={"url": "http://elsewhere.example/secret"},
                config=TaskConfig(allowed_domains=["127.0.0.1"], max_retries=0))  # fmt: skip
    result = served.client.execute_task(task)
    rules = [e.data["rule"] for e in served.client.get_events(result.execution_id)
             if e.kind == "policy_refused"]  # fmt: skip
    assert rules
    page = _signed_in(browser, served)
    page.goto(f"{served.url}/#/tasks/{result.execution_id}")
    row = page.locator("tr.refused").first
    row.wait_for()
    assert "elsewhere.example/secret" in row.inner_text() and rules[0] in row.inner_text()
    shot(page, "execution-refused")
    page.close()


def test_the_list_filters_by_state_and_name(browser: Any, served: Served) -> None:
    client = served.client
    client.execute_task(Task(name="steps", inputs={"steps": 1, "pause": 0}))
    failed = client.execute_task_async(Task(name="steps", inputs={"steps": "many"}))
    running = client.execute_task_async(Task(name="steps", inputs={"steps": 400, "pause": 0.5}))
    cancelled = client.execute_task_async(Task(name="steps", inputs={"steps": 400}))
    cancelled.cancel()
    failed.wait(30)
    page = _signed_in(browser, served)
    page.wait_for_selector(f"tr[data-id='{running.id}'][data-state=running]")
    page.wait_for_selector(f"tr[data-id='{failed.id}'][data-state=failed]")
    shot(page, "executions")
    page.select_option("select[name=state]", "cancelled")
    page.click("text=Filter")
    page.wait_for_selector(f"tr[data-id='{cancelled.id}']")
    states = page.eval_on_selector_all("tr[data-state]", "rows => rows.map(r => r.dataset.state)")
    assert states and set(states) == {"cancelled"}
    page.select_option("select[name=state]", "")
    page.fill("input[name=name]", "off_limits_none")
    page.click("text=Filter")
    page.wait_for_selector("td:text('No executions.')")
    running.cancel()
    page.close()


def test_the_cookie_is_secure_when_served_over_https(served: Served) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from aesoperator.service import ServiceSettings
    from aesoperator.service.serve import build_app

    app = build_app(served.client, ServiceSettings(rate_per_token=None))

    async def sign_in(base: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            return await client.post("/ui/login", data={"token": served.token})

    def run(base: str) -> httpx.Response:  # a thread of its own: Playwright holds this one's loop
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, sign_in(base)).result()

    over_https = run("https://dash.example")
    assert over_https.status_code == 303
    assert "secure" in over_https.headers["set-cookie"].lower()
    plain = run("http://dash.example")
    assert "secure" not in plain.headers["set-cookie"].lower()
    assert "httponly" in plain.headers["set-cookie"].lower()


def test_schedules_page_adds_lists_refuses_a_bad_cron_and_removes(
    browser: Any, served: Served
) -> None:
    api = httpx.Client(
        base_url=served.url, headers={"Authorization": f"Bearer {served.admin_token}"}
    )
    # A run token: the page says an admin token is needed, and shows no form that cannot work.
    page = _signed_in(browser, served)
    page.click("nav a[data-nav=schedules]")
    refusal = page.locator("#schedules-admin-only")
    refusal.wait_for()
    assert "admin" in refusal.inner_text() and "--scope admin" in refusal.inner_text()
    assert page.locator("#schedule-form").count() == 0
    shot(page, "schedules-run-token")
    page.close()

    page = _signed_in(browser, served, served.admin_token)
    page.click("nav a[data-nav=schedules]")
    page.wait_for_selector("#no-schedules")
    # A bad cron: the API's own problem, naming the field, and nothing added.
    page.fill("#sched-cron", "61 * * * *")
    page.fill("#sched-name", "steps")
    page.click("#sched-add")
    problem = page.locator(".problem")
    problem.wait_for()
    assert "minute field '61': must be 0-59" in problem.inner_text()
    assert "cron" in problem.locator("code").inner_text()
    assert api.get("/v1/schedules").json() == []
    page.fill("#sched-cron", "@hourly")
    page.fill("#sched-inputs", "{steps: 1")  # not JSON: said so before anything is sent
    page.click("#sched-add")
    expect(page.locator(".problem")).to_contain_text("Inputs is not JSON")
    assert api.get("/v1/schedules").json() == []
    # A good one by name and inputs: listed with its next run, as the API has it.
    page.fill("#sched-cron", "*/5 * * * *")
    page.fill("#sched-inputs", json.dumps({"steps": 1, "pause": 0, "note": "<b>x</b>"}))
    page.click("#sched-add")
    page.wait_for_selector("#schedule-added")
    [added] = api.get("/v1/schedules").json()
    assert added["task"]["inputs"]["note"] == "<b>x</b>" and added["allow_overlap"] is False
    row = page.locator(f"tr[data-id='{added['id']}']")
    assert row.locator("td").first.inner_text() == "*/5 * * * *"
    assert row.locator("[data-next]").get_attribute("data-next") == added["next_run_at"]
    assert row.locator("[data-next]").inner_text() not in ("", "–")
    assert "<b>x</b>" in row.inner_text() and row.locator("b").count() == 0  # text, not markup
    # A whole task as JSON, overlap allowed.
    page.fill("#sched-cron", "@daily")
    page.fill("#sched-task", json.dumps({"name": "steps", "inputs": {"steps": 2}}))
    page.check("#sched-overlap")
    page.click("#sched-add")
    expect(page.locator("table.schedules tbody tr")).to_have_count(2)
    second = next(s for s in api.get("/v1/schedules").json() if s["id"] != added["id"])
    assert second["cron"] == "@daily" and second["allow_overlap"] is True
    assert page.locator(f"tr[data-id='{second['id']}']").inner_text().count("allowed") == 1
    shot(page, "schedules")
    # Remove takes two clicks; then it is gone from the page and from the API.
    remove = page.locator(f"button[data-remove='{added['id']}']")
    remove.click()
    assert [s["id"] for s in api.get("/v1/schedules").json()].count(added["id"]) == 1
    remove.click()
    expect(page.locator(f"tr[data-id='{added['id']}']")).to_have_count(0)
    assert [s["id"] for s in api.get("/v1/schedules").json()] == [second["id"]]
    assert api.delete(f"/v1/schedules/{second['id']}").status_code == 204
    page.close()


def test_after_kill_9_and_a_restart_the_page_shows_the_run_failed_interrupted(
    browser: Any, tmp_path: Path
) -> None:
    import os
    import signal

    from aesoperator.store import open_store
    from waiting import eventually

    store = open_store(tmp_path / "data")
    token = store.token_create("ops", scope="run")[1]
    store.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    with _dash.serve_process(tmp_path, port) as proc:
        eid = httpx.post(f"{url}/v1/tasks", json={"name": "slow"}, headers=auth).json()["id"]
        eventually(lambda: httpx.get(f"{url}/v1/tasks/{eid}", headers=auth).json()["state"]
                   == "running", what="the slow task runs")  # fmt: skip
        os.kill(proc.pid, signal.SIGKILL)  # the server only: its workers die with it
        proc.wait(30)
    with _dash.serve_process(tmp_path, port):
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url + "/")
        page.fill("#token", token)
        page.click("button[type=submit]")
        row = page.locator(f"tr[data-id='{eid}'][data-state=failed]")
        row.wait_for()
        assert "Interrupted" in row.inner_text()
        assert page.locator("tr[data-state=running], tr[data-state=pending]").count() == 0
        shot(page, "after-kill-9-list")
        page.select_option("select[name=state]", "running")
        page.click("text=Filter")
        page.wait_for_selector("td:text('No executions.')")
        page.goto(f"{url}/#/tasks/{eid}")
        page.wait_for_selector(".state[data-state=failed]")
        assert "Interrupted" in page.inner_text(".kv")
        assert page.locator("#cancel").is_disabled()
        shot(page, "after-kill-9-execution")
        page.close()

// The Aesoperator dashboard: a hash-routed page over the /v1 API (same origin, session cookie).
// Text from tasks and pages is only ever set as text (textContent), never parsed as HTML.
"use strict";

const view = document.getElementById("view");
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
let teardown = [];  // what the current view must stop (timers, streams) when we leave it

// -- helpers ---------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-Aesop-UI"] = "1";  // the API's CSRF guard for cookie sessions
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) { location.replace("/"); throw new Problem(401, { detail: "signed out" }); }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!res.ok) throw new Problem(res.status, data);
  return data;
}

function problemBox(err) {
  const b = err.body || {};
  return h("div", { class: "problem", role: "alert" },
    h("strong", {}, b.title || `Error ${err.status || ""}`), " ",
    h("span", {}, b.detail || err.message),
    b.field ? h("div", { class: "small" }, "field: ", h("code", {}, String(b.field))) : null,
    b.fix ? h("div", { class: "small" }, "fix: ", String(b.fix)) : null);
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

function seconds(a, b) {
  if (!a) return "";
  const s = ((b ? new Date(b) : new Date()) - new Date(a)) / 1000;
  return s < 60 ? `${s.toFixed(s < 10 ? 2 : 1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function stateBadge(state) { return h("span", { class: `state ${state}`, "data-state": state }, state); }

function progressBar(status) {
  const fill = h("span");
  fill.style.width = `${Math.max(0, Math.min(100, status.progress || 0))}%`;  // CSSOM: CSP-safe
  return h("div", { class: "row" },
    h("div", { class: `bar ${status.state}`, role: "progressbar", "aria-valuemin": 0,
      "aria-valuemax": 100, "aria-valuenow": Math.round(status.progress || 0) }, fill),
    h("span", { class: "pct", "data-progress": status.progress }, `${Math.round(status.progress || 0)}%`));
}

function compact(obj) {
  if (obj === null || obj === undefined) return "";
  const s = typeof obj === "string" ? obj : JSON.stringify(obj);
  return s.length > 300 ? s.slice(0, 297) + "…" : s;
}

function setNav(name) {
  for (const a of document.querySelectorAll("header nav a"))
    a.classList.toggle("active", a.dataset.nav === name);
}

// -- executions list -------------------------------------------------------------------------

async function listView(params) {
  setNav("list");
  const state = params.get("state") || "";
  const name = params.get("name") || "";
  const cursor = params.get("cursor") || "";
  const back = params.getAll("back");
  const stateSel = h("select", { name: "state", "aria-label": "state" },
    ["", "pending", "running", "completed", "failed", "cancelled"].map(
      (s) => h("option", { value: s, selected: s === state }, s || "any state")));
  const nameIn = h("input", { name: "name", placeholder: "task name", value: name, "aria-label": "name" });
  const filter = h("form", { class: "row", onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (stateSel.value) q.set("state", stateSel.value);
    if (nameIn.value.trim()) q.set("name", nameIn.value.trim());
    location.hash = `#/?${q}`;
  } }, stateSel, nameIn, h("button", { type: "submit" }, "Filter"),
  h("span", { class: "spacer" }), h("a", { class: "button", href: "#/submit" }, "New task"));
  const body = h("tbody");
  const pager = h("div", { class: "row pager" });
  view.replaceChildren(h("h1", {}, "Executions"), h("div", { class: "card" }, filter),
    h("table", { class: "executions" },
      h("thead", {}, h("tr", {}, ["Name", "State", "Progress", "Current action", "Created",
        "Duration", "Id"].map((t) => h("th", {}, t)))), body), pager);

  async function load() {
    const q = new URLSearchParams({ limit: "25" });
    if (state) q.set("state", state);
    if (name) q.set("name", name);
    if (cursor) q.set("cursor", cursor);
    let page;
    try { page = await api(`/v1/tasks?${q}`); } catch (err) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: 7 }, problemBox(err)))); return;
    }
    // Rows are kept by id and only their changing cells redrawn: links stay clickable while
    // the list refreshes under the pointer.
    const rows = page.items.map((s) => {
      const row = body.querySelector(`tr[data-id="${CSS.escape(s.id)}"]`) || h("tr", {
        class: "clickable", "data-id": s.id,
        onclick: (e) => { if (!e.target.closest("a")) location.hash = `#/tasks/${encodeURIComponent(s.id)}`; },
      }, h("td", {}, h("a", { href: `#/tasks/${encodeURIComponent(s.id)}` }, s.name)), h("td"), h("td"),
      h("td", { class: "small" }), h("td", { class: "small" }, when(s.created_at)), h("td", { class: "small" }),
      h("td", { class: "mono small" }, s.id.slice(0, 12)));
      const key = JSON.stringify([s.state, s.progress, s.current_action, s.error, s.finished_at]);
      if (row.dataset.key !== key || !s.finished_at) {
        row.dataset.key = key;
        row.dataset.state = s.state;
        const cells = row.children;
        cells[1].replaceChildren(stateBadge(s.state));
        cells[2].replaceChildren(progressBar(s));
        cells[3].textContent = s.current_action || (s.error ? `${s.error.type}: ${s.error.message}` : "");
        cells[5].textContent = seconds(s.started_at, s.finished_at);
      }
      return row;
    });
    const same = rows.length === body.children.length && rows.every((r, i) => body.children[i] === r);
    if (!same) body.replaceChildren(...rows);
    if (!page.items.length)
      body.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No executions.")));
    const base = new URLSearchParams();
    if (state) base.set("state", state);
    if (name) base.set("name", name);
    const newer = new URLSearchParams(base);
    if (back.length > 1) { newer.set("cursor", back[back.length - 1]); back.slice(0, -1).forEach((b) => newer.append("back", b)); }
    const older = new URLSearchParams(base);
    if (page.next_cursor) { older.set("cursor", page.next_cursor); [...back, cursor].forEach((b) => older.append("back", b)); }
    pager.replaceChildren(...[
      cursor ? h("a", { class: "button secondary", href: `#/?${newer}` }, "← Newer") : null,
      h("span", { class: "spacer" }),
      page.next_cursor ? h("a", { class: "button secondary", href: `#/?${older}` }, "Older →") : null,
    ].filter(Boolean));
  }
  await load();
  const timer = setInterval(load, 1500);  // the list has no stream: a light poll keeps it live
  teardown.push(() => clearInterval(timer));
}

// -- one execution ---------------------------------------------------------------------------

function describe(ev, actions) {
  const d = ev.data || {};
  switch (ev.kind) {
    case "state": return [`state → ${d.state}`, d.error ? ` (${d.error.type}: ${d.error.message})` : ""];
    case "action": return [h("strong", {}, d.name), " ", h("span", { class: "muted small" }, compact(d.details))];
    case "action_end": {
      const a = actions.get(d.index);
      return [`${a ? a.name : "action"} ${d.ok ? "done" : "failed"}`, d.attempts > 1 ? `, ${d.attempts} attempts` : "",
        d.error ? `: ${d.error}` : ""];
    }
    case "page": return ["read ", h("a", { href: d.url, target: "_blank", rel: "noopener noreferrer" }, d.url),
      d.status ? ` (${d.status})` : "", d.title ? ` — ${d.title}` : ""];
    case "policy_refused": return ["refused ", h("code", {}, d.url || ""), " — rule ", h("strong", {}, d.rule || "?"),
      d.message ? h("div", { class: "small muted" }, d.message) : null];
    case "retry": return [`retry ${d.attempt ?? ""} of ${d.action || d.url || ""} in ${d.delay ?? "?"} s`,
      d.error ? `: ${d.error}` : ""];
    case "alert": return [h("strong", {}, d.kind || "alert"), ` [${d.severity || ""}] ${d.message || ""}`];
    case "log": return [`[${d.level || "info"}] ${d.message || ""}`];
    case "planner": return [`planned by ${d.planner || "?"}`];
    case "progress": return [`${Math.round(d.progress || 0)}%`, d.message ? ` ${d.message}` : ""];
    default: return [compact(d)];
  }
}

const TAG = { policy_refused: "refused", retry: "retry", page: "page", action: "action", action_end: "action" };

async function taskView(id) {
  setNav("list");
  let status;
  try { status = await api(`/v1/tasks/${encodeURIComponent(id)}`); } catch (err) {
    view.replaceChildren(h("h1", {}, "Execution"), problemBox(err)); return;
  }
  const head = h("div", { class: "card" });
  const alerts = h("div");
  const resultBox = h("div");
  const tbody = h("tbody");
  const actions = new Map();  // index -> {name, at, cell}
  let started = null;
  let lastSeq = 0;
  let resultShown = false;
  view.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← Executions")), head, alerts, resultBox,
    h("h2", {}, "Timeline"),
    h("table", { class: "timeline" }, h("thead", {}, h("tr", {},
      h("th", {}, "At"), h("th", {}, "Event"), h("th", {}, "What"), h("th", {}, "Duration"))), tbody));

  // The buttons and the title are made once; a status update replaces only the parts that
  // change, so a click never lands on a button that is being swapped out.
  const badge = h("span");
  const bar = h("div");
  const facts = h("dl", { class: "kv" });
  const notes = h("div");
  const cancel = h("button", { class: "danger", id: "cancel", onclick: async () => {
    cancel.disabled = true;
    try { const r = await api(`/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: "POST", body: {} }); renderHead(r.status); }
    catch (err) { notes.replaceChildren(problemBox(err)); cancel.disabled = TERMINAL.has(status.state); }
  } }, "Cancel");
  const rerun = h("button", { class: "secondary", id: "rerun", onclick: async () => {
    try { const r = await api(`/v1/tasks/${encodeURIComponent(id)}/rerun`, { method: "POST", body: {} });
      location.hash = `#/tasks/${encodeURIComponent(r.id)}`; }
    catch (err) { notes.replaceChildren(problemBox(err)); }
  } }, "Re-run");
  head.replaceChildren(h("div", { class: "row" }, h("h1", {}, status.name), badge, h("span", { class: "spacer" }),
    cancel, rerun), bar, facts, notes);

  function renderHead(s) {
    status = s;
    badge.replaceChildren(stateBadge(s.state));
    bar.replaceChildren(progressBar(s));
    if (TERMINAL.has(s.state)) cancel.disabled = true;
    facts.replaceChildren(...[
      h("dt", {}, "Id"), h("dd", { class: "mono" }, s.id),
      h("dt", {}, "Current action"), h("dd", { id: "current-action" }, s.current_action || "–"),
      h("dt", {}, "Created"), h("dd", {}, when(s.created_at)),
      h("dt", {}, "Duration"), h("dd", {}, seconds(s.started_at, s.finished_at) || "–"),
      s.parent_id ? [h("dt", {}, "Parent"), h("dd", {}, h("a", { href: `#/tasks/${encodeURIComponent(s.parent_id)}` }, s.parent_id))] : null,
      s.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, `${s.error.type}: ${s.error.message}`)] : null,
    ].flat().filter(Boolean));
    if (s.alerts && s.alerts.length)
      alerts.replaceChildren(h("div", { class: "card" }, h("h2", {}, "Alerts"), h("ul", { class: "alerts" },
        s.alerts.map((a) => h("li", {}, h("span", { class: `tag ${a.severity}` }, a.severity), " ",
          h("strong", {}, a.kind), " ", a.message, a.url ? ` (${a.url})` : "")))));
    if (TERMINAL.has(s.state) && !resultShown) { resultShown = true; showResult(s); }
  }

  async function showResult(s) {
    const parts = [h("h2", {}, "Result")];
    if (s.state === "completed") {
      parts.push(h("iframe", { class: "report", title: "report", src: `/ui/tasks/${encodeURIComponent(id)}/report`,
        sandbox: "allow-popups allow-popups-to-escape-sandbox" }));
    } else parts.push(h("p", { class: "muted" }, `No result: the execution ${s.state}.`));
    resultBox.replaceChildren(h("div", { class: "card" }, parts));
    try {
      const files = await api(`/v1/tasks/${encodeURIComponent(id)}/artifacts`);
      if (!files.length) return;
      const link = (f) => `/v1/tasks/${encodeURIComponent(id)}/artifacts/${encodeURIComponent(f.name)}`;
      const images = files.filter((f) => /^image\/(png|jpeg|gif|webp)$/.test(f.media_type));
      resultBox.firstChild.append(...[h("h2", {}, "Artifacts"),
        h("ul", {}, files.map((f) => h("li", {}, h("a", { href: link(f), download: f.name.split("/").pop() }, f.name),
          h("span", { class: "muted small" }, ` ${f.media_type}, ${f.size.toLocaleString()} bytes`)))),
        images.length ? h("div", { class: "shots" }, images.map((f) => h("a", { href: link(f), target: "_blank" },
          h("img", { src: link(f), alt: f.name, loading: "lazy" })))) : null].filter(Boolean));
    } catch { /* artifacts are optional */ }
  }

  function addEvent(ev) {
    if (ev.seq <= lastSeq) return;
    lastSeq = ev.seq;
    started = started || ev.at;
    const d = ev.data || {};
    let dur = h("td", { class: "small" });
    if (ev.kind === "action") actions.set(d.index, { name: d.name, at: ev.at, cell: dur });
    if (ev.kind === "action_end") {
      const a = actions.get(d.index);
      if (a) a.cell.textContent = seconds(a.at, ev.at);
    }
    // A step that ended well shows as its duration on the step's own row, not as a row.
    if (ev.kind === "action_end" && d.ok !== false) return;
    const tag = ev.kind === "action_end" ? "failed" : TAG[ev.kind] || (ev.kind === "alert" ? d.severity : ev.kind === "state" ? d.state : "");
    tbody.append(h("tr", { class: ev.kind === "policy_refused" ? "refused" : "", "data-kind": ev.kind },
      h("td", { class: "small mono" }, `+${seconds(started, ev.at)}`),
      h("td", { class: "kind" }, h("span", { class: `tag ${tag || ""}` }, ev.kind)),
      h("td", {}, describe(ev, actions)), dur));
  }

  renderHead(status);
  try {
    let page;
    do { page = await api(`/v1/tasks/${encodeURIComponent(id)}/events?after=${lastSeq}&limit=1000`);
      page.items.forEach(addEvent); } while (page.items.length === 1000);
  } catch (err) { tbody.append(h("tr", {}, h("td", { colspan: 4 }, problemBox(err)))); }
  if (!TERMINAL.has(status.state)) follow();

  // Live: the SSE stream, read with fetch so every event kind arrives (EventSource only
  // delivers named events one listens for by name) and resumed after a drop from lastSeq.
  function follow() {
    const ctrl = new AbortController();
    teardown.push(() => ctrl.abort());
    (async () => {
      for (let tries = 0; tries < 50 && !ctrl.signal.aborted; tries++) {
        try {
          const res = await fetch(`/v1/tasks/${encodeURIComponent(id)}/events?after=${lastSeq}`, {
            headers: { Accept: "text/event-stream" }, credentials: "same-origin", signal: ctrl.signal });
          if (res.status === 401) { location.replace("/"); return; }
          if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buf = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += value.replace(/\r\n?/g, "\n");
            let cut;
            while ((cut = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
              let kind = "message"; const data = [];
              for (const line of block.split("\n")) {
                if (line.startsWith("event:")) kind = line.slice(6).trim();
                else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
              }
              if (!data.length) continue;
              const payload = JSON.parse(data.join("\n"));
              if (kind === "status") renderHead({ ...status, ...payload, result: null });
              else if (kind === "end") { renderHead(payload); return; }
              else addEvent(payload);
            }
          }
        } catch (err) { if (ctrl.signal.aborted) return; }
        await new Promise((r) => setTimeout(r, 1000));
        try { const s = await api(`/v1/tasks/${encodeURIComponent(id)}`); renderHead(s); if (TERMINAL.has(s.state)) return; }
        catch { /* retry */ }
      }
    })();
  }
}

// -- submit ----------------------------------------------------------------------------------

async function submitView() {
  setNav("submit");
  const out = h("div");
  const names = h("datalist", { id: "runnable" });
  let skills = new Set();
  api("/v1/handlers").then((r) => (skills = new Set(r.skills || []), names.replaceChildren(
    ...[...(r.handlers || []), ...(r.skills || [])].map((n) => h("option", { value: n })))))
    .catch(() => {});
  const nameIn = h("input", { id: "task-name", name: "name", list: "runnable", required: true, placeholder: "research_topic" });
  const inputsIn = h("textarea", { id: "task-inputs", rows: 5 }, '{"topic": "..."}');
  const configIn = h("textarea", { id: "task-config", rows: 3 }, "{}");
  const jsonIn = h("textarea", { id: "task-json", rows: 12, placeholder: '{"name": "...", "inputs": {}, "config": {}}' });
  const wait = h("input", { type: "checkbox", id: "wait" });

  async function send(task) {
    out.replaceChildren();
    try {
      const s = await api(`/v1/tasks${wait.checked ? "?wait=true&timeout=30" : ""}`, { method: "POST", body: task });
      location.hash = `#/tasks/${encodeURIComponent(s.id)}`;
    } catch (err) { out.replaceChildren(problemBox(err)); }
  }
  function parse(text, what) {
    try { return JSON.parse(text || "{}"); } catch (e) {
      out.replaceChildren(problemBox(new Problem(0, { title: `${what} is not JSON`, detail: e.message }))); return undefined;
    }
  }
  view.replaceChildren(h("h1", {}, "Submit a task"), out,
    h("form", { class: "card", id: "simple-form", onsubmit: (e) => {
      e.preventDefault();
      const inputs = parse(inputsIn.value, "Inputs"); const config = parse(configIn.value, "Config");
      const name = nameIn.value.trim();
      // A skill's name runs that skill; any other name is a registered handler's.
      if (inputs !== undefined && config !== undefined)
        send({ name, inputs, config, ...(skills.has(name) ? { skill: name } : {}) });
    } }, h("h2", {}, "By name"), h("label", { for: "task-name" }, "Handler or skill"), nameIn, names,
    h("label", { for: "task-inputs" }, "Inputs (JSON)"), inputsIn,
    h("label", { for: "task-config" }, "Config (JSON: max_pages, allowed_domains, …)"), configIn,
    h("p", { class: "row" }, h("button", { type: "submit", id: "submit-simple" }, "Submit"),
      h("label", { for: "wait", class: "row small" }, wait, "wait up to 30 s"))),
    h("form", { class: "card", id: "json-form", onsubmit: (e) => {
      e.preventDefault();
      const task = parse(jsonIn.value, "The task"); if (task !== undefined) send(task);
    } }, h("h2", {}, "As task JSON"), h("label", { for: "task-json" }, "Task"), jsonIn,
    h("p", {}, h("button", { type: "submit", id: "submit-json" }, "Submit JSON"))));
}

// -- memory ----------------------------------------------------------------------------------

async function memoryView(params) {
  setNav("memory");
  const ns = params.get("ns") || "";
  const recent = JSON.parse(localStorage.getItem("aesop.namespaces") || "[]");
  const nsIn = h("input", { id: "namespace", value: ns, placeholder: "global, task:<name>, exec:<id>",
    list: "recent-ns", required: true });
  const box = h("div");
  view.replaceChildren(h("h1", {}, "Memory"),
    h("form", { class: "card row", onsubmit: (e) => {
      e.preventDefault(); location.hash = `#/memory?${new URLSearchParams({ ns: nsIn.value.trim() })}`;
    } }, h("label", { for: "namespace" }, "Namespace"), nsIn,
    h("datalist", { id: "recent-ns" }, [...new Set([...recent, "global"])].map((n) => h("option", { value: n }))),
    h("button", { type: "submit" }, "Open"),
    h("span", { class: "muted small" }, "Name a namespace: global, task:<task name> or exec:<execution id> (the API does not list them).")),
    box);
  if (!ns) return;
  localStorage.setItem("aesop.namespaces", JSON.stringify([ns, ...recent.filter((n) => n !== ns)].slice(0, 20)));
  const base = `/v1/memory/${encodeURIComponent(ns)}`;
  let keys;
  try { keys = (await api(base)).keys; } catch (err) { box.replaceChildren(problemBox(err)); return; }
  const detail = h("div");
  const keyIn = h("input", { id: "mem-key", placeholder: "key" });
  const valIn = h("textarea", { id: "mem-value", rows: 6 }, "");
  const show = (key) => { location.hash = `#/memory?${new URLSearchParams({ ns, key })}`; };
  async function open(key) {
    try {
      const r = await api(`${base}/${encodeURIComponent(key)}`);
      keyIn.value = r.key; valIn.value = JSON.stringify(r.value, null, 2);
    } catch (err) { detail.replaceChildren(problemBox(err)); }
  }
  box.replaceChildren(h("div", { class: "card" }, h("h2", {}, `Keys in ${ns} (${keys.length})`),
    keys.length ? h("table", { class: "keys" }, h("tbody", {}, keys.map((k) =>
      h("tr", { class: "clickable", onclick: () => show(k) }, h("td", { class: "mono" }, k))))) :
      h("p", { class: "muted" }, "No keys.")),
  h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    let value; try { value = JSON.parse(valIn.value); } catch (err) {
      detail.replaceChildren(problemBox(new Problem(0, { title: "The value is not JSON", detail: err.message }))); return; }
    try { await api(`${base}/${encodeURIComponent(keyIn.value)}`, { method: "PUT", body: { value } }); show(keyIn.value); route(); }
    catch (err) { detail.replaceChildren(problemBox(err)); }
  } }, h("h2", {}, "Value"), detail, h("label", { for: "mem-key" }, "Key"), keyIn,
  h("label", { for: "mem-value" }, "Value (JSON)"), valIn,
  h("p", { class: "row" }, h("button", { type: "submit", id: "mem-save" }, "Save"),
    h("button", { type: "button", class: "danger", onclick: async () => {
      try { await api(`${base}/${encodeURIComponent(keyIn.value)}`, { method: "DELETE" }); route(); }
      catch (err) { detail.replaceChildren(problemBox(err)); }
    } }, "Delete"))));
  if (params.get("key")) await open(params.get("key"));
}

// -- schedules -------------------------------------------------------------------------------

function scheduleTask(t) {
  const what = t.skill ? `${t.name} (skill ${t.skill})` : t.name;
  const inputs = t.inputs && Object.keys(t.inputs).length ? ` ${compact(t.inputs)}` : "";
  return [h("strong", {}, what), h("span", { class: "muted small" }, inputs)];
}

async function schedulesView() {
  setNav("schedules");
  const out = h("div");
  const body = h("tbody");
  const listBox = h("div", { class: "card" });
  view.replaceChildren(h("h1", {}, "Schedules"), out, listBox);
  let items;
  try { items = await api("/v1/schedules"); } catch (err) {
    if (err.status !== 403) { listBox.replaceChildren(problemBox(err)); return; }
    // A read or run token: say what is needed instead of showing a form that cannot work.
    listBox.replaceChildren(h("div", { class: "problem", role: "alert", id: "schedules-admin-only" },
      h("strong", {}, "Schedules need an admin token."), " ",
      h("span", {}, (err.body && err.body.detail) || ""),
      h("div", { class: "small" }, "Sign out and sign in with a token made by ",
        h("code", {}, "aesop token create NAME --scope admin"), ".")));
    return;
  }
  const skills = new Set();
  const names = h("datalist", { id: "sched-runnable" });
  api("/v1/handlers").then((r) => { (r.skills || []).forEach((n) => skills.add(n));
    names.replaceChildren(...[...(r.handlers || []), ...(r.skills || [])].map((n) => h("option", { value: n }))); })
    .catch(() => {});

  function render() {
    if (!items.length) {
      listBox.replaceChildren(h("p", { class: "muted", id: "no-schedules" }, "No schedules in this project."));
      return;
    }
    body.replaceChildren(...items.map((s) => {
      const remove = h("button", { class: "danger small", "data-remove": s.id, onclick: async () => {
        // Two clicks: the first asks, the second removes.
        if (remove.dataset.armed !== "1") { remove.dataset.armed = "1"; remove.textContent = "Remove for good?"; return; }
        remove.disabled = true;
        try { await api(`/v1/schedules/${encodeURIComponent(s.id)}`, { method: "DELETE" });
          items = items.filter((x) => x.id !== s.id); render(); }
        catch (err) { out.replaceChildren(problemBox(err)); remove.disabled = false; }
      } }, "Remove");
      const last = s.last_run_at ? [when(s.last_run_at), s.last_execution_id ? [" ",
        h("a", { href: `#/tasks/${encodeURIComponent(s.last_execution_id)}` }, "open")] : null] : "never";
      return h("tr", { "data-id": s.id },
        h("td", { class: "mono" }, s.cron),
        h("td", {}, scheduleTask(s.task)),
        h("td", { class: "small", "data-next": s.next_run_at, title: s.next_run_at }, when(s.next_run_at)),
        h("td", { class: "small" }, last, s.last_error ? h("div", { class: "error small" }, s.last_error) : null),
        h("td", { class: "small" }, String(s.missed)),
        h("td", { class: "small" }, String(s.skipped ?? 0)),
        h("td", { class: "small" }, s.allow_overlap ? "allowed" : "no"),
        h("td", { class: "mono small" }, s.id.slice(0, 12)),
        h("td", {}, remove));
    }));
    listBox.replaceChildren(h("table", { class: "schedules" }, h("thead", {}, h("tr", {},
      ["Cron (UTC)", "Task", "Next run", "Last run", "Missed", "Skipped", "Overlap", "Id", ""].map(
        (t) => h("th", {}, t)))), body));
  }
  render();
  // Runs, misses and skips happen on the server's clock: a light poll keeps them current
  // (redrawn only when something changed, so a half-confirmed Remove is not reset for nothing).
  let seen = JSON.stringify(items);
  const timer = setInterval(async () => {
    try { const now = await api("/v1/schedules"); const key = JSON.stringify(now);
      if (key !== seen) { seen = key; items = now; render(); } } catch { /* next time */ }
  }, 5000);
  teardown.push(() => clearInterval(timer));

  const cronIn = h("input", { id: "sched-cron", required: true, placeholder: "*/5 * * * *", "aria-label": "cron" });
  const nameIn = h("input", { id: "sched-name", list: "sched-runnable", placeholder: "handler or skill" });
  const inputsIn = h("textarea", { id: "sched-inputs", rows: 3 }, "{}");
  const taskIn = h("textarea", { id: "sched-task", rows: 6, placeholder: '{"name": "...", "inputs": {}, "config": {}}' });
  const overlap = h("input", { type: "checkbox", id: "sched-overlap" });
  function parse(text, what) {
    try { return JSON.parse(text); } catch (e) {
      out.replaceChildren(problemBox(new Problem(0, { title: `${what} is not JSON`, detail: e.message }))); return undefined;
    }
  }
  view.append(h("form", { class: "card", id: "schedule-form", onsubmit: async (e) => {
    e.preventDefault();
    out.replaceChildren();
    let task;
    if (taskIn.value.trim()) task = parse(taskIn.value, "The task");
    else {
      const inputs = parse(inputsIn.value.trim() || "{}", "Inputs");
      const name = nameIn.value.trim();
      if (inputs !== undefined) task = { name, inputs, ...(skills.has(name) ? { skill: name } : {}) };
    }
    if (task === undefined) return;
    try {
      const added = await api("/v1/schedules", { method: "POST",
        body: { cron: cronIn.value.trim(), task, allow_overlap: overlap.checked } });
      items = [...items, added]; render();
      out.replaceChildren(h("p", { class: "card", role: "status", id: "schedule-added" },
        `Added ${added.id.slice(0, 12)}: next run ${when(added.next_run_at)}.`));
    } catch (err) { out.replaceChildren(problemBox(err)); }
  } }, h("h2", {}, "Add a schedule"),
  h("label", { for: "sched-cron" }, "Cron (5 fields, UTC, or @hourly, @daily …)"), cronIn,
  h("label", { for: "sched-name" }, "Handler or skill"), nameIn, names,
  h("label", { for: "sched-inputs" }, "Inputs (JSON)"), inputsIn,
  h("label", { for: "sched-task" }, "Or the whole task as JSON (used instead of the two above when filled)"), taskIn,
  h("p", { class: "row" }, h("button", { type: "submit", id: "sched-add" }, "Add schedule"),
    h("label", { for: "sched-overlap", class: "row small" }, overlap,
      "allow overlap (start a run even while the previous one still runs)"))));
}

// -- router ----------------------------------------------------------------------------------

async function route() {
  teardown.forEach((fn) => fn()); teardown = [];
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const params = new URLSearchParams(query);
  const m = path.match(/^\/tasks\/([^/]+)$/);
  if (m) return taskView(decodeURIComponent(m[1]));
  if (path === "/submit") return submitView();
  if (path === "/memory") return memoryView(params);
  if (path === "/schedules") return schedulesView();
  return listView(params);
}

window.addEventListener("hashchange", route);
route();

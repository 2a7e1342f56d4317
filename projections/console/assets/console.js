// Tessera console: a small hash-routed page over the console's JSON API (api/…).
// Everything shown is built with DOM calls and text nodes, never parsed as HTML, so an
// event's payload cannot inject markup.
"use strict";

(function () {
  const TOKEN_KEY = "tessera-console-token";
  const POLL_MS = 1000;
  const HISTORY = 60;
  const main = document.getElementById("main");
  const notice = document.getElementById("notice");
  let timer = null;           // the current page's polling timer
  let generation = 0;         // bumps on every navigation; stale renders stop
  const lagHistory = new Map();      // runner name -> [lag_events...]
  const breakerHistory = new Map();  // guard name -> [state...]

  // ---------- helpers ----------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  function svg(tag, attrs) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  }
  const enc = encodeURIComponent;
  function badge(state) { return h("span", { class: "badge " + state }, String(state).replace("_", " ")); }
  function when(ms) { return ms ? new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC") : "—"; }
  function age(ms) {
    if (!ms) return "0 s";
    if (ms < 1000) return ms + " ms";
    if (ms < 120000) return (ms / 1000).toFixed(1) + " s";
    return Math.round(ms / 60000) + " min";
  }
  function say(text) {
    notice.replaceChildren(h("p", {}, text));
    setTimeout(() => { if (notice.textContent === text) notice.replaceChildren(); }, 4000);
  }
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }
  async function api(path, method) {
    const headers = { "Accept": "application/json" };
    if (token()) headers["Authorization"] = "Bearer " + token();
    const res = await fetch("api/" + path, { method: method || "GET", headers, cache: "no-store" });
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
    if (!res.ok) {
      const detail = (body && (body.detail || body.title)) || text || res.statusText;
      throw new ApiError(res.status, detail);
    }
    return body;
  }
  function failure(err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      return h("div", { class: "alert", role: "alert" },
        h("strong", {}, err.status === 401 ? "The admin token is missing or wrong. " : "Not allowed. "),
        err.message, " Enter the admin token above and press “Use token”.");
    }
    const what = err instanceof ApiError ? "The console's API answered " + err.status + ": " : "Could not reach the console's API: ";
    return h("div", { class: "alert", role: "alert" }, what, err.message);
  }
  function draw(title, ...content) {
    main.replaceChildren(h("h2", { id: "page-title" }, title), ...content);
  }
  // A page function's `page`: draws only while the page is still the one asked for, so
  // a slow answer for a page the operator has left does not replace the new one.
  function pager() {
    const mine = generation;
    return (...args) => { if (mine === generation) draw(...args); };
  }
  function query() {
    const hash = location.hash || "#/";
    const i = hash.indexOf("?");
    return new URLSearchParams(i >= 0 ? hash.slice(i + 1) : "");
  }
  function route() {
    const hash = location.hash || "#/";
    const path = hash.slice(1).split("?")[0];
    return path.split("/").filter(Boolean).map((p) => {
      try { return decodeURIComponent(p); } catch (_) { return p; }
    });
  }
  function qs(params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") p.set(k, v);
    const s = p.toString();
    return s ? "?" + s : "";
  }
  // Shows `err` in `box` unless it already says the same (a poll failing every second
  // would otherwise announce it every second).
  function show(box, err) {
    const next = failure(err);
    if (box.textContent !== next.textContent) box.replaceChildren(next);
  }
  function clear(box) { if (box.childNodes.length) box.replaceChildren(); }
  function poll(fn) {
    const mine = generation;
    const tick = async () => {
      if (mine !== generation) return;
      await fn();
      if (mine === generation) timer = setTimeout(tick, POLL_MS);
    };
    tick();
  }
  let overviewCache = null;
  async function overview() {
    if (!overviewCache) overviewCache = await api("overview");
    return overviewCache;
  }

  // ---------- event rendering ----------
  function eventRow(store, e, opts) {
    const meta = { correlation_id: e.correlation_id, causation_id: e.causation_id, headers: e.headers };
    const details = h("details", {},
      h("summary", {}, "Payload and metadata"),
      h("dl", { class: "facts" },
        h("dt", {}, "Event id"), h("dd", { class: "mono", id: "event-" + e.id }, e.id),
        h("dt", {}, "Schema version"), h("dd", {}, e.schema_version),
        h("dt", {}, "Correlation"), h("dd", {}, e.correlation_id
          ? h("a", { href: "#/correlation/" + enc(e.correlation_id), class: "correlation mono" }, e.correlation_id)
          : "—"),
        h("dt", {}, "Caused by"), h("dd", { class: "mono" }, e.causation_id || "—")),
      h("h3", {}, "Payload"), h("pre", { class: "payload" }, JSON.stringify(e.data, null, 2)),
      h("h3", {}, "Metadata"), h("pre", {}, JSON.stringify(meta, null, 2)));
    return h("tr", { "data-event-version": e.version, "data-event-id": e.id },
      opts && opts.showStore ? h("td", {}, store) : null,
      opts && opts.showStream
        ? h("td", {}, h("a", { href: "#/stream/" + enc(store) + "/" + enc(e.stream_id) }, e.stream_id))
        : null,
      h("td", { class: "num" }, e.version),
      h("td", { class: "mono" }, e.position),
      h("td", { class: "event-type" }, e.type),
      h("td", {}, when(e.recorded_at_ms)),
      h("td", {}, details));
  }
  function eventTable(store, events, opts) {
    return h("table", { class: "events" },
      h("thead", {}, h("tr", {},
        opts && opts.showStore ? h("th", { scope: "col" }, "Store") : null,
        opts && opts.showStream ? h("th", { scope: "col" }, "Stream") : null,
        h("th", { scope: "col", class: "num" }, "Version"),
        h("th", { scope: "col" }, "Position"),
        h("th", { scope: "col" }, "Type"),
        h("th", { scope: "col" }, "Recorded"),
        h("th", { scope: "col" }, "Details"))),
      h("tbody", {}, events.map((e) => eventRow(e.store || store, e, opts))));
  }
  function storeTabs(stores, current, to) {
    return h("nav", { class: "tabs", "aria-label": "Stores" },
      stores.map((s) => h("a", { href: to(s.name), "aria-current": s.name === current ? "true" : null }, s.name)));
  }

  // ---------- pages ----------
  async function streamsPage(parts) {
    const page = pager();
    const ov = await overview();
    if (!ov.stores.length) return page("Streams", h("p", {}, "No store is mounted in this console."));
    const store = parts[1] || ov.stores[0].name;
    const category = parts[2] || "";
    const q = query();
    const open = h("form", { class: "inline", id: "open-stream" },
      h("label", { for: "stream-id" }, "Stream id", h("input", { id: "stream-id", name: "stream", required: true, placeholder: "order-…" })),
      h("button", { type: "submit" }, "Open stream"));
    open.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const id = open.querySelector("input").value.trim();
      if (id) location.hash = "#/stream/" + enc(store) + "/" + enc(id);
    });
    const tabs = storeTabs(ov.stores, store, (s) => "#/streams/" + enc(s));
    if (!category) {
      const body = await api("stores/" + enc(store) + "/categories" + qs({ after: q.get("after"), limit: 100 }));
      if (!body.supported) {
        return page("Streams", tabs, open, h("p", {}, "This store cannot list its categories; open a stream by its id, or read the log."));
      }
      page("Streams in " + store, tabs, open,
        h("h3", {}, "Categories"),
        body.categories.length
          ? h("ul", { class: "categories" }, body.categories.map((c) =>
            h("li", {}, h("a", { href: "#/streams/" + enc(store) + "/" + enc(c) }, c))))
          : h("p", {}, q.get("after") ? "No more categories." : "No events yet."),
        body.next_after ? h("div", { class: "pager" }, h("a", { href: "#/streams/" + enc(store) + qs({ after: body.next_after }) }, "More categories")) : null);
      return;
    }
    const body = await api("stores/" + enc(store) + "/streams" + qs({ category, after: q.get("after"), limit: 50 }));
    page("Streams of " + category + " in " + store, tabs, open,
      h("p", {}, h("a", { href: "#/streams/" + enc(store) }, "All categories"), " · ",
        h("a", { href: "#/log/" + enc(store) + qs({ category }) }, "This category in the log")),
      h("table", { class: "streams" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Stream"), h("th", { scope: "col", class: "num" }, "Version"))),
        h("tbody", {}, body.streams.map((s) => h("tr", { "data-stream": s.stream_id },
          h("td", {}, h("a", { href: "#/stream/" + enc(store) + "/" + enc(s.stream_id) }, s.stream_id)),
          h("td", { class: "num" }, s.version))))),
      body.next_after
        ? h("div", { class: "pager" }, h("a", { href: "#/streams/" + enc(store) + "/" + enc(category) + qs({ after: body.next_after }) }, "Next streams"))
        : null);
  }

  async function streamPage(parts) {
    const page = pager();
    const [, store, stream] = parts;
    const q = query();
    const dir = q.get("direction") || "forward";
    let body;
    try {
      body = await api("stores/" + enc(store) + "/streams/" + enc(stream) + qs({ from: q.get("from"), direction: dir, limit: 20 }));
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 400)) {
        return page("Stream " + stream, h("div", { class: "alert", role: "alert" }, err.message),
          h("p", {}, h("a", { href: "#/streams/" + enc(store) }, "Back to the streams of " + store)));
      }
      throw err;
    }
    const other = dir === "forward" ? "backward" : "forward";
    page("Stream " + stream,
      h("p", {}, "Store ", h("strong", {}, store), ", version ", h("strong", { id: "stream-version" }, body.version),
        " · ", h("a", { href: "#/stream/" + enc(store) + "/" + enc(stream) + qs({ direction: other }) }, other === "backward" ? "Newest first" : "Oldest first")),
      eventTable(store, body.events),
      h("div", { class: "pager" },
        body.next_from !== null && body.next_from !== undefined
          ? h("a", { href: "#/stream/" + enc(store) + "/" + enc(stream) + qs({ from: body.next_from, direction: dir }), id: "next-page" }, "Next events")
          : h("span", { class: "muted" }, "End of stream")));
  }

  async function logPage(parts) {
    const page = pager();
    const ov = await overview();
    if (!ov.stores.length) return page("Log", h("p", {}, "No store is mounted in this console."));
    const store = parts[1] || ov.stores[0].name;
    const q = query();
    const form = h("form", { class: "inline", id: "log-filter" },
      h("label", { for: "log-after" }, "After position", h("input", { id: "log-after", name: "after", value: q.get("after") || "", placeholder: "0.0" })),
      h("label", { for: "log-category" }, "Categories", h("input", { id: "log-category", name: "category", value: q.get("category") || "", placeholder: "order,product" })),
      h("label", { for: "log-type" }, "Event types", h("input", { id: "log-type", name: "type", value: q.get("type") || "", placeholder: "OrderPlaced" })),
      h("button", { type: "submit" }, "Read"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      location.hash = "#/log/" + enc(store) + qs({ after: f.get("after").trim(), category: f.get("category").trim(), type: f.get("type").trim() });
    });
    const tabs = storeTabs(ov.stores, store, (s) => "#/log/" + enc(s));
    let body;
    try {
      body = await api("stores/" + enc(store) + "/log" + qs({ after: q.get("after"), category: q.get("category"), type: q.get("type"), limit: 50 }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) {
        return page("Log of " + store, tabs, form, h("div", { class: "alert", role: "alert" }, err.message));
      }
      throw err;
    }
    page("Log of " + store, tabs, form,
      h("p", { class: "muted" }, "Head: ", body.head || "empty", ". Showing events after ", body.after, "."),
      eventTable(store, body.events, { showStream: true }),
      h("div", { class: "pager" }, body.next_after
        ? h("a", { href: "#/log/" + enc(store) + qs({ after: body.next_after, category: q.get("category"), type: q.get("type") }), id: "next-page" }, "Next events")
        : h("span", { class: "muted" }, "At the head")));
  }

  async function correlationPage(parts) {
    const page = pager();
    const id = parts[1];
    let body;
    try { body = await api("correlated/" + enc(id) + qs({ limit: 200 })); } catch (err) {
      if (err instanceof ApiError && err.status === 400) return page("Correlation", h("div", { class: "alert", role: "alert" }, err.message));
      throw err;
    }
    const all = [];
    for (const s of body.stores) for (const e of s.events) all.push(Object.assign({ store: s.store }, e));
    all.sort((a, b) => a.recorded_at_ms - b.recorded_at_ms);
    const ids = new Set(all.map((e) => e.id));
    const rows = all.map((e) => {
      const cause = e.causation_id && ids.has(e.causation_id)
        ? h("a", { href: "#/correlation/" + enc(id), onclick: (ev) => { ev.preventDefault(); focusEvent(e.causation_id); } }, "event " + e.causation_id.slice(0, 8))
        : (e.causation_id ? h("span", { class: "mono" }, e.causation_id.slice(0, 8) + " (a command or another service's message)") : "—");
      return h("tr", { "data-event-id": e.id, id: "chain-" + e.id, tabindex: "-1" },
        h("td", {}, e.store),
        h("td", {}, h("a", { href: "#/stream/" + enc(e.store) + "/" + enc(e.stream_id) + qs({ from: e.version }) }, e.stream_id + " @ " + e.version)),
        h("td", { class: "event-type" }, e.type),
        h("td", {}, when(e.recorded_at_ms)),
        h("td", {}, cause));
    });
    const unsupported = body.stores.filter((s) => !s.supported && !s.error).map((s) => s.store);
    const failed = body.stores.filter((s) => s.error);
    const cut = body.stores.filter((s) => s.next_after).map((s) => s.store);
    page("Correlation " + id,
      h("p", {}, "Every event of this correlation id in every store, oldest first, with what caused each."),
      unsupported.length ? h("p", { class: "muted" }, "Stores that cannot search by correlation: " + unsupported.join(", ")) : null,
      failed.map((s) => h("div", { class: "alert", role: "alert" }, s.store + ": " + s.error)),
      cut.length ? h("p", { class: "muted" }, "Only the first 200 events of each store are shown; there are more in " + cut.join(", ") + ".") : null,
      h("table", { class: "chain" },
        h("thead", {}, h("tr", {}, ["Store", "Event", "Type", "Recorded", "Caused by"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows)));
  }
  function focusEvent(id) {
    const row = document.getElementById("chain-" + id);
    if (row) { row.focus(); row.scrollIntoView({ block: "center" }); }
  }

  // Projections: the table is built once per visit and updated in place every second,
  // so focus and a pending confirmation survive the refresh.
  async function projectionsPage() {
    const page = pager();
    const rows = new Map();
    const tbody = h("tbody", {});
    const rebuildsBox = h("div", { id: "rebuilds" });
    const alert = h("div", {});
    const sampled = h("p", { class: "muted", id: "sampled" }, "");
    page("Projections and relays", alert, sampled,
      h("table", { class: "runners" },
        h("thead", {}, h("tr", {}, ["Name", "Kind", "State", "Checkpoint", "Lag", "Lag over the last minute", "Held back", "Applied", "Last error", "Actions"]
          .map((t) => h("th", { scope: "col" }, t)))),
        tbody),
      h("h3", {}, "Rebuilds"), rebuildsBox);
    poll(async () => {
      let body;
      try { body = await api("runners"); clear(alert); } catch (err) { show(alert, err); return; }
      if (!body.supported) { alert.replaceChildren(h("p", {}, "This service shows no runners here.")); return; }
      sampled.textContent = "Updated " + when(body.sampled_at_ms) + ", every second.";
      for (const r of body.runners) {
        let row = rows.get(r.name);
        if (!row) { row = runnerRow(r); rows.set(r.name, row); tbody.append(row.tr); }
        updateRunner(row, r, body.rebuilds.find((b) => b.name === r.name));
      }
      rebuildsBox.replaceChildren(body.rebuilds.length
        ? h("ul", {}, body.rebuilds.map((b) => h("li", { "data-rebuild": b.name }, b.name + ": ",
          b.error ? h("span", { class: "error" }, "failed: " + b.error)
            : (b.finished ? "finished, " + b.done + " events" : b.done + " of about " + b.total + " events"))))
        : h("p", { class: "muted" }, "None started since the service started."));
    });
  }
  function runnerRow(r) {
    const cells = {
      state: h("td", { class: "state" }),
      checkpoint: h("td", { class: "mono checkpoint" }),
      lag: h("td", { class: "lag num" }),
      chart: h("td", {}),
      held: h("td", { class: "num held" }),
      applied: h("td", { class: "num applied" }),
      error: h("td", { class: "last-error" }),
      actions: h("td", { class: "actions" }),
    };
    const line = svg("polyline", { points: "" });
    const chart = svg("svg", { class: "chart", viewBox: "0 0 " + HISTORY + " 30", preserveAspectRatio: "none", role: "img", "aria-label": "Lag of " + r.name + " over the last minute" });
    chart.append(line);
    cells.chart.append(chart);
    const progress = h("progress", { class: "rebuild-progress", max: "100", value: "0", "aria-label": "Rebuild of " + r.name, hidden: true });
    const percent = h("span", { class: "rebuild-percent" });
    const rebuild = h("button", { type: "button", class: "rebuild primary", "aria-label": "Rebuild " + r.name, hidden: !r.rebuildable }, "Rebuild");
    const restart = h("button", { type: "button", class: "restart danger", "aria-label": "Restart " + r.name, hidden: true }, "Restart");
    rebuild.addEventListener("click", () => act(r.name, "rebuild",
      "Rebuild " + r.name + "? A new copy is built beside the live one from the whole log and takes over when it has caught up."));
    restart.addEventListener("click", () => act(r.name, "restart",
      "Restart " + r.name + "? It reads the event it failed on again, from its checkpoint."));
    cells.actions.append(rebuild, " ", restart, " ", progress, " ", percent);
    const tr = h("tr", { "data-runner": r.name },
      h("th", { scope: "row" }, r.name), h("td", {}, r.kind + " · " + r.context),
      cells.state, cells.checkpoint, cells.lag, cells.chart, cells.held, cells.applied, cells.error, cells.actions);
    return { tr, cells, line, chart, progress, percent, rebuild, restart };
  }
  function updateRunner(row, r, rb) {
    row.cells.state.replaceChildren(badge(r.state));
    row.tr.dataset.state = r.state;
    row.cells.checkpoint.textContent = r.checkpoint;
    row.cells.lag.textContent = r.lag_events + " events, " + age(r.lag_ms);
    row.tr.dataset.lag = r.lag_events;
    row.cells.held.textContent = r.held_back_events;
    row.cells.applied.textContent = r.applied;
    const hist = lagHistory.get(r.name) || [];
    hist.push(r.lag_events);
    while (hist.length > HISTORY) hist.shift();
    lagHistory.set(r.name, hist);
    row.tr.dataset.samples = hist.length;
    row.tr.dataset.maxLag = Math.max(...hist);
    const top = Math.max(1, ...hist);
    row.line.setAttribute("points", hist.map((v, i) => (i + HISTORY - hist.length) + "," + (29 - (v / top) * 28).toFixed(1)).join(" "));
    row.chart.setAttribute("aria-label", "Lag of " + r.name + " over the last minute: now " + r.lag_events + ", at most " + Math.max(...hist) + " events");
    const errKey = JSON.stringify([r.failed_event, r.last_error, r.backlog]);
    if (row.errKey !== errKey) { row.errKey = errKey; row.cells.error.replaceChildren(...lastError(r)); }
    row.restart.hidden = !(r.state === "failed" && r.restartable);
    row.rebuild.hidden = !r.rebuildable;
    if (rb) {
      const pct = rb.finished ? 100 : (rb.total > 0 ? Math.min(99, Math.floor((rb.done / rb.total) * 100)) : 0);
      row.progress.hidden = false;
      row.progress.value = pct;
      row.percent.textContent = rb.error ? "failed" : pct + " %";
      row.rebuild.disabled = !rb.finished && !rb.error;
    }
  }
  // What the last-error cell shows: the event a runner failed on, its last error, and a
  // process manager's backlog.
  function lastError(r) {
    const err = [];
    if (r.failed_event) {
      const f = r.failed_event;
      err.push(h("span", { class: "error" }, f.error), h("br", {}),
        "at ", h("a", { href: "#/stream/" + enc(r.context) + "/" + enc(f.stream_id) + qs({ from: f.version }) }, f.stream_id + " @ " + f.version),
        " (" + (f.event_type || "undecodable") + ", position " + f.position + ", " + f.attempts + " attempts)");
    } else if (r.last_error) {
      err.push(h("span", { class: "muted" }, r.last_error));
    }
    if (r.backlog) err.push(h("div", { class: "muted" }, r.backlog.waiting + " commands waiting (" + r.backlog.retrying + " retrying), oldest " + age(r.backlog.oldest_ms)));
    return err;
  }
  async function act(name, what, question) {
    if (!window.confirm(question)) return;
    try {
      await api("runners/" + enc(name) + "/" + what, "POST");
      say(what === "rebuild" ? "Rebuild of " + name + " started." : name + " restarted.");
    } catch (err) {
      say("Could not " + what + " " + name + ": " + err.message);
    }
  }

  // Process managers: counts by status, updated in place every second.
  async function processesPage() {
    const page = pager();
    const statuses = ["pending", "compensating", "completed", "failed"];
    const tbody = h("tbody", {});
    const alert = h("div", {});
    const rows = new Map();
    page("Process managers", alert,
      h("table", { class: "processes" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Process manager"),
          statuses.map((s) => h("th", { scope: "col", class: "num" }, s)),
          h("th", { scope: "col", class: "num" }, "Commands waiting"),
          h("th", { scope: "col", class: "num" }, "Deadlines scheduled (due)"))),
        tbody));
    poll(async () => {
      let body;
      try { body = await api("processes"); clear(alert); } catch (err) { show(alert, err); return; }
      if (!body.processes.length) { alert.replaceChildren(h("p", {}, "No process manager is mounted in this console.")); return; }
      for (const p of body.processes) {
        let row = rows.get(p.name);
        if (!row) {
          row = {
            links: statuses.map((s) => h("a", { href: "#/processes/" + enc(p.name) + qs({ status: s }) })),
            waiting: h("td", { class: "num waiting" }),
            deadlines: h("td", { class: "num deadlines" }),
            error: h("td", { class: "error", colspan: 6, hidden: true }),
          };
          row.cells = statuses.map((s, i) => h("td", { class: "num count-" + s }, row.links[i]));
          tbody.append(h("tr", { "data-process": p.name },
            h("th", { scope: "row" }, h("a", { href: "#/processes/" + enc(p.name) }, p.name)),
            row.cells, row.waiting, row.deadlines, row.error));
          rows.set(p.name, row);
        }
        const failed = Boolean(p.error);
        row.error.hidden = !failed;
        row.error.textContent = p.error || "";
        for (const c of [...row.cells, row.waiting, row.deadlines]) c.hidden = failed;
        if (failed) continue;
        statuses.forEach((s, i) => {
          row.links[i].textContent = p.instances[s];
          row.links[i].setAttribute("aria-label", p.instances[s] + " " + s + " instances of " + p.name);
        });
        row.waiting.textContent = p.commands_waiting + (p.commands_retrying ? " (" + p.commands_retrying + " retrying)" : "");
        row.deadlines.textContent = p.deadlines_scheduled + " (" + p.deadlines_due + ")";
      }
    });
  }

  async function instancesPage(parts) {
    const page = pager();
    const name = parts[1];
    const q = query();
    const status = q.get("status") || "";
    const body = await api("processes/" + enc(name) + "/instances" + qs({ status, after: q.get("after"), limit: 50 }));
    const filter = h("nav", { class: "tabs", "aria-label": "Status" },
      ["", "pending", "compensating", "completed", "failed"].map((s) =>
        h("a", { href: "#/processes/" + enc(name) + qs({ status: s }), "aria-current": s === status ? "true" : null }, s || "all")));
    page((status ? status[0].toUpperCase() + status.slice(1) + " instances" : "Instances") + " of " + name, filter,
      body.instances.length ? h("table", { class: "instances" },
        h("thead", {}, h("tr", {}, ["Instance", "Status", "Steps", "Version", "Reason"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, body.instances.map((i) => h("tr", { "data-instance": i.id },
          h("td", {}, h("a", { href: "#/process/" + enc(name) + "/" + enc(i.id) }, i.id)),
          h("td", {}, badge(i.status)), h("td", { class: "num" }, i.steps), h("td", { class: "num" }, i.version),
          h("td", {}, i.reason || "—")))))
        : h("p", {}, q.get("after") ? "No more instances." : "No instance" + (status ? " is " + status : "") + "."),
      body.next_after ? h("div", { class: "pager" }, h("a", { href: "#/processes/" + enc(name) + qs({ status, after: body.next_after }), id: "next-page" }, "Next instances")) : null);
  }

  async function instancePage(parts) {
    const page = pager();
    const [, name, id] = parts;
    let i;
    try { i = await api("processes/" + enc(name) + "/instances/" + enc(id)); } catch (err) {
      if (err instanceof ApiError && err.status === 404) return page("Instance " + id, h("div", { class: "alert", role: "alert" }, err.message));
      throw err;
    }
    const table = (cls, heads, rows) => rows.length
      ? h("table", { class: cls }, h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, "None.");
    page("Instance " + i.id + " of " + name,
      h("dl", { class: "facts" },
        h("dt", {}, "Status"), h("dd", { id: "instance-status" }, badge(i.status)),
        h("dt", {}, "Reason"), h("dd", {}, i.reason || "—"),
        h("dt", {}, "Version"), h("dd", {}, i.version)),
      h("h3", {}, "Steps"),
      table("steps", ["Step", "State", "Compensation"], i.steps.map((s) => h("tr", {},
        h("td", {}, s.name), h("td", {}, typeof s.state === "string" ? s.state : JSON.stringify(s.state)),
        h("td", {}, h("code", {}, JSON.stringify(s.compensation)))))),
      i.records_error ? h("div", { class: "alert", role: "alert" }, "Commands, deadlines and inputs handled: " + i.records_error) : null,
      i.truncated ? h("p", { class: "muted" }, "Long lists are cut to their first 200 items.") : null,
      h("h3", {}, "Commands"),
      table("commands", ["State", "Kind", "Command", "Attempts", "Not before", "Last error"], i.commands.map((c) => h("tr", { "data-command": c.id },
        h("td", {}, badge(c.state)), h("td", {}, c.kind), h("td", {}, h("code", {}, JSON.stringify(c.command))),
        h("td", { class: "num" }, c.attempts), h("td", {}, when(c.not_before_ms)), h("td", {}, c.last_error || "—")))),
      h("h3", {}, "Deadlines"),
      table("deadlines", ["Key", "Due", "State"], i.deadlines.map((d) => h("tr", {},
        h("td", {}, d.key), h("td", {}, when(d.due_at_ms)), h("td", {}, badge(d.state))))),
      h("h3", {}, "Inputs handled"),
      table("handled", ["Trigger (event or deadline id)", "Handled"], i.handled.map((x) => h("tr", {},
        h("td", { class: "mono" }, x.trigger_id), h("td", {}, when(x.handled_at_ms))))),
      h("h3", {}, "State"), h("pre", {}, JSON.stringify(i.state, null, 2)));
  }

  async function resiliencePage() {
    const page = pager();
    const tbody = h("tbody", {});
    const alert = h("div", {});
    const rows = new Map();
    page("Resilience", alert,
      h("table", { class: "guards" },
        h("thead", {}, h("tr", {}, ["Guard", "Breaker", "State over the last minute", "Calls", "Failures", "Refused while open", "Opened", "Bulkhead in flight", "Bulkhead refused"]
          .map((t) => h("th", { scope: "col" }, t)))),
        tbody));
    poll(async () => {
      let body;
      try { body = await api("resilience"); clear(alert); } catch (err) { show(alert, err); return; }
      if (!body.guards.length) { alert.replaceChildren(h("p", {}, "No guard is mounted in this console.")); return; }
      for (const g of body.guards) {
        let row = rows.get(g.name);
        if (!row) {
          row = { state: h("td", {}), timeline: h("div", { class: "timeline", role: "img" }), cells: [1, 2, 3, 4, 5, 6].map(() => h("td", { class: "num" })) };
          row.tr = h("tr", { "data-guard": g.name }, h("th", { scope: "row" }, g.name), row.state, h("td", {}, row.timeline), row.cells);
          rows.set(g.name, row);
          tbody.append(row.tr);
        }
        const hist = breakerHistory.get(g.name) || [];
        hist.push(g.breaker.state);
        while (hist.length > HISTORY) hist.shift();
        breakerHistory.set(g.name, hist);
        row.state.replaceChildren(badge(g.breaker.state));
        row.timeline.replaceChildren(...hist.map((s) => h("span", { class: s, title: s })));
        const open = hist.filter((s) => s !== "closed").length;
        row.timeline.setAttribute("aria-label", "Breaker of " + g.name + " over the last " + hist.length + " seconds: not closed for " + open);
        const b = g.breaker, k = g.bulkhead;
        [b.calls, b.failures, b.rejected, b.opened, k.in_flight + " of " + k.max_concurrent, k.rejected]
          .forEach((v, i) => { row.cells[i].textContent = v; });
      }
    });
  }

  // ---------- routing ----------
  const pages = {
    streams: streamsPage, stream: streamPage, log: logPage, correlation: correlationPage,
    projections: projectionsPage, processes: (p) => (p[1] ? instancesPage(p) : processesPage()),
    process: instancePage, resilience: resiliencePage,
  };
  async function render() {
    generation += 1;
    if (timer) { clearTimeout(timer); timer = null; }
    const parts = route();
    const name = parts[0] && Object.prototype.hasOwnProperty.call(pages, parts[0]) ? parts[0] : "streams";
    for (const a of document.querySelectorAll("nav a[data-nav]")) {
      const current = a.dataset.nav === name || (a.dataset.nav === "streams" && name === "stream")
        || (a.dataset.nav === "processes" && name === "process");
      if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const mine = generation;
    try {
      await pages[name](parts);
    } catch (err) {
      if (mine === generation) draw("Something went wrong", failure(err));
    }
    if (mine === generation) {
      const title = document.getElementById("page-title");
      document.title = (title ? title.textContent + " · " : "") + "Tessera console";
    }
  }

  document.getElementById("skip").addEventListener("click", (ev) => { ev.preventDefault(); main.focus(); });
  const form = document.getElementById("token-form");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = document.getElementById("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    document.getElementById("token").value = "";
    overviewCache = null;
    say(value ? "Token saved for this tab." : "Token cleared.");
    render();
  });
  window.addEventListener("hashchange", () => { render().then(() => main.focus({ preventScroll: true })); });
  (async () => {
    try {
      const ov = await overview();
      document.getElementById("title").textContent = ov.title;
    } catch (_) { /* shown by the page */ }
    render();
  })();
})();

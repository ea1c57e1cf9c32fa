/* State Lab: polls the public API and /metrics, draws inline SVG, drives bursts.
   Plain JavaScript, no dependencies. */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("lab-config").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const HISTORY = 180; // samples kept per series (3 minutes at one poll per second)
  const STATES = ["pending", "debited", "credited", "completed", "failed", "compensating", "compensated"];
  const sources = {}; // name -> {ok, at, error}
  const history = {}; // series name -> [numbers]
  let tick = 0;
  let timer = null;

  // ---------- small helpers ----------
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function fmt(n, digits) {
    if (n === null || n === undefined || Number.isNaN(n)) return "–";
    return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 1 : digits });
  }
  function clock(date) { return date.toTimeString().slice(0, 8); }
  function push(name, value) {
    const series = history[name] || (history[name] = []);
    series.push(value);
    if (series.length > HISTORY) series.shift();
    return series;
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "lab-" + Date.now() + "-" + Math.random().toString(16).slice(2);
  }

  // ---------- HTTP ----------
  async function api(method, url, body, headers) {
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), 8000);
    const init = {
      method,
      credentials: "same-origin",
      signal: controller.signal,
      headers: Object.assign({ Accept: "application/json" }, headers || {}),
    };
    if (method !== "GET") init.headers["X-CSRFToken"] = cfg.csrf;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    try {
      const response = await fetch(url, init);
      const type = response.headers.get("Content-Type") || "";
      const data = type.includes("json") ? await response.json() : await response.text();
      return { status: response.status, ok: response.ok, data, headers: response.headers };
    } finally {
      clearTimeout(timeout);
    }
  }
  function problem(result) {
    const data = result.data || {};
    return `HTTP ${result.status}${data.code ? " " + data.code : ""}${data.detail ? ": " + data.detail : ""}`;
  }

  // ---------- Prometheus text format ----------
  function parseMetrics(text) {
    const samples = [];
    const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (const raw of text.split("\n")) {
      if (!raw || raw[0] === "#") continue;
      const m = line.exec(raw);
      if (!m) continue;
      const labels = {};
      if (m[3]) for (const l of m[3].matchAll(label)) labels[l[1]] = l[2].replace(/\\(.)/g, "$1");
      samples.push({ name: m[1], labels, value: parseFloat(m[4]) });
    }
    return samples;
  }
  function pick(samples, name, where) {
    return samples.filter((s) => s.name === name && Object.entries(where || {}).every(([k, v]) => s.labels[k] === v));
  }
  function total(samples, name, where) { return pick(samples, name, where).reduce((a, s) => a + s.value, 0); }
  function byLabel(samples, name, key) {
    const out = {};
    for (const s of pick(samples, name)) out[s.labels[key]] = (out[s.labels[key]] || 0) + s.value;
    return out;
  }

  // ---------- drawing ----------
  function sparkline(values, opts) {
    const w = opts.width || 220, h = opts.height || 40;
    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "spark", role: "img", "aria-label": opts.label });
    root.append(svg("title", {}, opts.label));
    const data = values.length ? values : [0];
    const max = Math.max(...data, opts.min_max || 0, 1e-9);
    const step = data.length > 1 ? (w - 4) / (HISTORY - 1) : 0;
    const x0 = w - 2 - step * (data.length - 1);
    const points = data.map((v, i) => `${(x0 + i * step).toFixed(1)},${(h - 3 - (v / max) * (h - 14)).toFixed(1)}`);
    root.append(svg("line", { x1: 0, y1: h - 2, x2: w, y2: h - 2, class: "axis" }));
    root.append(svg("polyline", { points: points.join(" "), class: "line" }));
    const last = points[points.length - 1].split(",");
    root.append(svg("circle", { cx: last[0], cy: last[1], r: 2.5, class: "dot" }));
    root.append(svg("text", { x: 2, y: 9, class: "tick" }, `max ${fmt(max)}${opts.unit || ""}`));
    return root;
  }

  const PATTERNS = ["solid", "stripes", "dots", "cross", "hatch", "grid", "plain"];
  function patternDefs() {
    const defs = svg("defs");
    const make = (id, children) => {
      const p = svg("pattern", { id, width: 6, height: 6, patternUnits: "userSpaceOnUse" });
      p.append(svg("rect", { width: 6, height: 6, class: "pat-bg" }));
      children.forEach((c) => p.append(c));
      defs.append(p);
    };
    make("p-stripes", [svg("path", { d: "M0,6 L6,0", class: "pat-ink" })]);
    make("p-dots", [svg("circle", { cx: 3, cy: 3, r: 1.3, class: "pat-fill" })]);
    make("p-cross", [svg("path", { d: "M0,0 L6,6 M6,0 L0,6", class: "pat-ink" })]);
    make("p-hatch", [svg("path", { d: "M0,3 L6,3", class: "pat-ink" })]);
    make("p-grid", [svg("path", { d: "M3,0 L3,6 M0,3 L6,3", class: "pat-ink" })]);
    return defs;
  }
  function fillFor(index) {
    const name = PATTERNS[index % PATTERNS.length];
    if (name === "solid") return { fill: "var(--ink)" };
    if (name === "plain") return { fill: "var(--soft)" };
    return { fill: `url(#p-${name})` };
  }

  function bars(items, opts) {
    const w = 320, row = 22, labelW = opts.labelWidth || 110;
    const h = items.length * row + 4;
    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "bars", role: "img", "aria-label": opts.label });
    root.append(svg("title", {}, opts.label));
    root.append(patternDefs());
    const max = Math.max(...items.map((i) => i.value), 1e-9);
    items.forEach((item, i) => {
      const y = i * row + 2;
      const width = Math.max(0, ((w - labelW - 60) * item.value) / max);
      root.append(svg("text", { x: 0, y: y + 14, class: "lbl" }, item.label));
      const rect = svg("rect", Object.assign({ x: labelW, y: y + 3, width: width.toFixed(1), height: row - 8, class: "bar" }, fillFor(i)));
      root.append(rect);
      root.append(svg("text", { x: labelW + width + 4, y: y + 14, class: "val" }, item.text || fmt(item.value)));
    });
    return root;
  }

  function heatmap(rows, columns, opts) {
    // rows: [{label, values}]; shorter rows fill the rightmost columns (a series growing from the right).
    const labelW = 70, cell = opts.cell || 8, rowH = 24, valueW = 72;
    const w = labelW + columns * cell + valueW, h = rows.length * rowH + 16;
    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "heat", role: "img", "aria-label": opts.label });
    root.append(svg("title", {}, opts.label));
    const max = Math.max(...rows.flatMap((r) => r.values), 1e-9);
    rows.forEach((r, i) => {
      const y = i * rowH;
      root.append(svg("text", { x: 0, y: y + 15, class: "lbl" }, r.label));
      const offset = columns - r.values.length;
      r.values.forEach((v, j) => {
        const rect = svg("rect", {
          x: labelW + (offset + j) * cell, y: y + 2, width: cell - 1, height: rowH - 4,
          class: "cell", "fill-opacity": (0.06 + 0.94 * (v / max)).toFixed(2),
        });
        rect.append(svg("title", {}, opts.cellTitle(r, offset + j, v)));
        root.append(rect);
      });
      root.append(svg("text", { x: labelW + columns * cell + 6, y: y + 15, class: "val" }, opts.rowValue(r)));
    });
    root.append(svg("text", { x: labelW, y: h - 3, class: "tick" }, opts.left));
    root.append(svg("text", { x: labelW + columns * cell, y: h - 3, class: "tick", "text-anchor": "end" }, opts.right));
    return root;
  }

  function perSecond(v) { return `${fmt(v)}/s`; }

  function renderRangeHeat(heat, shards) {
    const ranges = (heat && heat.ranges) || [];
    if (!ranges.length) { replaceChildren("shard-range-heat", el("p", {}, "no data")); return; }
    const rows = shards.map((alias) => ({ label: alias, values: ((heat.shards || {})[alias] || {}).operations_per_second || ranges.map(() => 0) }));
    const span = (j) => `buckets ${ranges[j].first_bucket}–${ranges[j].last_bucket}`;
    let busiest = null;
    rows.forEach((r) => r.values.forEach((v, j) => { if (v > 0 && (!busiest || v > busiest.v)) busiest = { label: r.label, j, v }; }));
    replaceChildren("shard-range-heat",
      heatmap(rows, ranges.length, {
        cell: 20,
        label: `operations per second by serving shard and bucket range (${ranges.length} ranges)`,
        cellTitle: (r, j, v) => `${r.label}, ${span(j)}: ${fmt(v)} ops/s`,
        rowValue: (r) => perSecond(r.values.reduce((a, v) => a + v, 0)),
        left: `bucket ${ranges[0].first_bucket}`,
        right: `bucket ${ranges[ranges.length - 1].last_bucket} · darker = busier`,
      }),
      el("p", { id: "shard-range-busiest" }, busiest ? `busiest: ${busiest.label}, ${span(busiest.j)}, ${perSecond(busiest.v)}` : "no operations recently"));
  }

  function replaceChildren(id, ...nodes) { const n = $(id); if (n) n.replaceChildren(...nodes); }

  // ---------- sources ----------
  function mark(name, ok, error) {
    const prev = sources[name] || {};
    sources[name] = ok ? { ok: true, at: new Date() } : { ok: false, at: prev.at, error };
    if (name === "reconciliation") $("conservation").classList.toggle("stale-figure", !ok);
    renderSourceStatus();
  }
  function renderSourceStatus() {
    document.querySelectorAll("[data-sources]").forEach((node) => {
      const parts = [];
      let stale = false;
      for (const name of node.dataset.sources.split(" ")) {
        const s = sources[name];
        if (!s) continue;
        if (s.ok) parts.push(`${name}: live ${clock(s.at)}`);
        else { stale = true; parts.push(`${name}: STALE (${s.error})${s.at ? ", last good " + clock(s.at) : ""}`); }
      }
      node.textContent = parts.join(" · ");
      node.classList.toggle("stale", stale);
      node.closest(".panel").classList.toggle("is-stale", stale);
    });
    const bad = Object.entries(sources).filter(([, s]) => !s.ok).map(([n]) => n);
    const status = $("poll-status");
    if (document.hidden) status.textContent = "paused (tab hidden)";
    else if (bad.length) status.textContent = `STALE: ${bad.join(", ")} failed; retrying`;
    else status.textContent = `live · every ${cfg.poll_ms / 1000} s · ${clock(new Date())}`;
    status.classList.toggle("stale", bad.length > 0);
  }

  async function poll(name, url, render, options) {
    try {
      const result = await api("GET", url, undefined, options && options.headers);
      const accept = (options && options.accept) || ((r) => r.ok);
      if (!accept(result)) throw new Error(problem(result));
      render(result.data, result);
      mark(name, true);
    } catch (error) {
      mark(name, false, error.name === "AbortError" ? "timed out" : error.message);
    }
  }

  // ---------- panels ----------
  function renderMetrics(text) {
    const m = parseMetrics(text);
    // Saga
    const multiples = [];
    STATES.forEach((state) => {
      const value = total(m, "statelab_transfers", { state });
      const series = push("transfers:" + state, value);
      const first = series[0];
      multiples.push(el("div", { class: "multiple", "data-state": state },
        el("span", { class: "m-label" }, state),
        el("span", { class: "m-value", "data-testid": "state-" + state }, fmt(value, 0)),
        el("span", { class: "m-delta" }, value - first >= 0 ? `+${fmt(value - first, 0)}` : fmt(value - first, 0)),
        sparkline(series, { label: `${state} transfers over the last ${series.length} s`, width: 160, height: 30 })));
    });
    replaceChildren("saga-states", ...multiples);
    const compensated = total(m, "statelab_transfers", { state: "compensated" });
    const compensating = total(m, "statelab_transfers", { state: "compensating" });
    $("saga-compensations").textContent =
      `${fmt(total(m, "statelab_saga_compensations_total"), 0)} started · ${fmt(compensated, 0)} done · ${fmt(compensating, 0)} running`;
    const backlog = byLabel(m, "statelab_outbox_backlog", "database");
    $("saga-outbox").textContent = Object.keys(backlog).length
      ? Object.entries(backlog).map(([db, n]) => `${db} ${fmt(n, 0)}`).join(" · ")
      : "no data";

    // Replicas
    const up = byLabel(m, "statelab_replica_up", "replica");
    const lagBytes = byLabel(m, "statelab_replica_lag_bytes", "replica");
    const lagSeconds = byLabel(m, "statelab_replica_lag_seconds", "replica");
    const rotation = byLabel(m, "statelab_replica_in_rotation", "replica");
    const blocks = Object.keys(up).sort().map((replica) => {
      const bytes = push("lagb:" + replica, lagBytes[replica] || 0);
      const ms = push("lagms:" + replica, (lagSeconds[replica] || 0) * 1000);
      const state = up[replica] ? "up" : "DOWN";
      const inRotation = rotation[replica] === undefined ? "" : rotation[replica] ? ", in rotation" : ", OUT of rotation";
      return el("div", { class: "replica" + (up[replica] ? "" : " down") },
        el("h3", {}, `${replica}: ${state}${inRotation}`),
        el("div", { class: "pair" },
          el("figure", {}, el("figcaption", {}, `lag ${fmt(lagBytes[replica] || 0, 0)} bytes`), sparkline(bytes, { label: `${replica} lag in bytes`, unit: " B" })),
          el("figure", {}, el("figcaption", {}, `lag ${fmt((lagSeconds[replica] || 0) * 1000, 0)} ms`), sparkline(ms, { label: `${replica} lag in milliseconds`, unit: " ms" }))));
    });
    replaceChildren("replica-lag", ...(blocks.length ? blocks : [el("p", {}, "no replica configured")]));
    const targets = byLabel(m, "statelab_profile_reads_total", "target");
    const items = Object.entries(targets).sort().map(([label, value]) => ({ label, value }));
    replaceChildren("reads-target", items.length ? bars(items, { label: "profile reads by target" }) : el("p", {}, "no profile reads counted yet"));
    $("stale-prevented").textContent = fmt(total(m, "statelab_profile_stale_reads_prevented_total"), 0);
    const cache = byLabel(m, "statelab_profile_cache_total", "result");
    const lookups = (cache.hit || 0) + (cache.miss || 0);
    $("cache-ratio").textContent = lookups
      ? `${fmt((100 * (cache.hit || 0)) / lookups)} % (${fmt(cache.hit || 0, 0)} hits / ${fmt(lookups, 0)} lookups)`
      : "no lookups yet";
  }

  function renderReconciliation(report) {
    const node = $("conservation");
    const money = report.money_conserved || {};
    const ok = !!report.ok;
    node.classList.remove("good", "bad", "unknown");
    node.classList.add(ok ? "good" : "bad");
    const currencies = (money.currencies || []).map((c) =>
      `${c.currency}: balances ${fmt(c.balances / 100, 2)} + held ${fmt(c.held_in_transfers / 100, 2)} ${c.ok ? "=" : "≠"} deposits ${fmt(c.deposits / 100, 2)}`);
    node.replaceChildren(
      el("span", { class: "mark", "aria-hidden": "true" }, ok ? "✓" : "✗"),
      el("span", { class: "verdict", "data-testid": "conservation" }, ok ? "Invariants hold" : "INVARIANT BROKEN"),
      el("small", {}, currencies.join(" · ") || "no money yet"),
      el("small", {}, ["transfer_operations", "journal_matches_balances", "operations_explain_balances"]
        .map((k) => `${k.replace(/_/g, " ")}: ${report[k] && report[k].ok ? "ok" : "DIFFERS"}`).join(" · ")));
    $("saga-inflight").textContent = fmt(report.in_flight, 0);
  }

  async function renderTransfers(list) {
    const latest = list.slice(0, 5);
    const details = await Promise.all(latest.map((t) => api("GET", `/api/transfers/${t.id}/`).catch(() => null)));
    const items = latest.map((listed, i) => {
      let t = listed;
      const detail = details[i] && details[i].ok ? details[i].data : null;
      if (detail) t = detail; // fetched after the list: the newer state
      const start = new Date(t.created_at).getTime();
      const steps = detail
        ? detail.history.map((h) => el("li", { class: "step" }, el("b", {}, h.to_state), ` +${fmt(new Date(h.at).getTime() - start, 0)} ms`))
        : [el("li", {}, t.state)];
      return el("li", {},
        el("span", { class: "t-head" }, `${t.amount} ${t.currency} #${t.source} → #${t.destination}: `, el("b", {}, t.state), t.failure_reason ? ` (${t.failure_reason})` : ""),
        el("ol", { class: "steps" }, ...steps));
    });
    replaceChildren("saga-latest", ...(items.length ? items : [el("li", {}, "no transfers yet")]));
  }

  function renderStats(stats) {
    const shards = Object.keys(stats.shards || {}).sort();
    const rows = shards.map((alias) => ({ label: alias, values: push("shard:" + alias, stats.shards[alias].operations_per_second || 0).slice(-40) }));
    replaceChildren("shard-heat", heatmap(rows, 40, {
      label: "operations per second per shard, last 40 seconds",
      cellTitle: (r, j, v) => `${r.label}: ${fmt(v)} ops/s`,
      rowValue: (r) => perSecond(r.values.length ? r.values[r.values.length - 1] : 0),
      left: "← 40 s ago",
      right: "now · darker = busier",
    }));
    renderRangeHeat(stats.heat, shards);
    const table = el("table", {},
      el("thead", {}, el("tr", {}, ...["shard", "ops total", "ops/s", "buckets", "counter slots", "events", "status"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...shards.map((alias) => {
        const s = stats.shards[alias];
        return el("tr", { class: s.status === "ok" ? "" : "down" },
          el("th", { scope: "row" }, alias), el("td", {}, fmt(s.operations_total, 0)), el("td", {}, fmt(s.operations_per_second)),
          el("td", {}, fmt(s.buckets, 0)), el("td", {}, fmt(s.counter_slots, 0)), el("td", {}, fmt(s.events, 0)),
          el("td", {}, s.status === "ok" ? "ok" : "UNAVAILABLE"));
      })));
    replaceChildren("shard-table", el("div", { class: "scroll" }, table));
    const imbalance = stats.imbalance || {};
    $("shard-imbalance").textContent = fmt(imbalance.operations_per_second, 2);
    $("shard-imbalance-total").textContent = fmt(imbalance.operations_total, 2);
    $("shard-map").textContent = fmt(stats.map_version, 0);
    const hot = stats.hot_keys || [];
    const top = (stats.top_keys || []).slice(0, 5);
    replaceChildren("hot-keys",
      hot.length
        ? el("ul", { class: "hot" }, ...hot.map((k) => el("li", {}, el("b", {}, "HOT "), el("code", {}, k.key), ` ${fmt(k.rate)}/s, ${fmt(k.share * 100)} % of traffic, slots on ${k.slots.join(", ")}`)))
        : el("p", {}, "no hot key now"),
      top.length ? el("p", { class: "topkeys" }, "busiest keys: ", ...top.flatMap((k, i) => [i ? ", " : "", el("code", {}, k.key), ` ${fmt(k.rate)}/s`])) : "");
  }

  function renderReady(report) {
    const checks = report.checks || {};
    const items = Object.entries(checks).sort().map(([name, c]) => {
      const extra = c.ok ? (c.lag_bytes !== undefined && c.lag_bytes !== null ? ` lag ${fmt(c.lag_bytes, 0)} B` : "") : `: ${c.error || "down"}`;
      return el("li", { class: c.ok ? "ok" : "down" }, el("b", {}, c.ok ? "ok" : "DOWN"), ` ${name}${extra}`);
    });
    const down = report.down || [];
    const summary = $("deps-summary");
    summary.textContent = down.length
      ? `✗ DOWN: ${down.join(", ")} (${items.length - down.length} of ${items.length} ok)`
      : `✓ all ${items.length} dependencies ok`;
    summary.classList.toggle("down", down.length > 0);
    if (down.length) $("deps").open = true;
    replaceChildren("deps-list", ...items);
  }

  // ---------- controls ----------
  function faultInput(f) {
    const id = "fault-" + f.name;
    if (f.kind === "flag") {
      const box = el("input", { type: "checkbox", id, name: f.name });
      box.checked = !!f.value;
      return { node: box, read: () => box.checked };
    }
    if (f.kind === "choices") {
      const boxes = (f.choices || []).map((c) => {
        const box = el("input", { type: "checkbox", value: c, name: f.name });
        box.checked = f.value.includes(c);
        return el("label", { class: "choice" }, box, " " + c);
      });
      const wrap = el("span", { class: "choices", id }, ...boxes);
      return { node: wrap, read: () => boxes.map((l) => l.querySelector("input")).filter((b) => b.checked).map((b) => b.value) };
    }
    const probability = f.kind === "probability";
    const input = el("input", { type: "number", id, name: f.name, min: 0, max: probability ? 1 : 60000, step: probability ? 0.05 : 100, value: f.value });
    return { node: input, read: () => (probability ? parseFloat(input.value) : parseInt(input.value, 10)) };
  }

  function renderFaults(doc) {
    const container = $("faults");
    if (container.contains(document.activeElement) && container.dataset.loaded) return; // do not reset a field being edited
    container.dataset.loaded = "1";
    const rows = doc.faults.map((f) => {
      const control = faultInput(f);
      const out = el("span", { class: "out", "aria-live": "polite" });
      const apply = el("button", { type: "button", "data-fault": f.name }, "Apply");
      apply.addEventListener("click", async () => {
        apply.disabled = true;
        try {
          const result = await api("PATCH", "/api/faults/", { [f.name]: control.read() });
          out.textContent = result.ok ? `set to ${JSON.stringify(result.data.faults.find((x) => x.name === f.name).value)}` : problem(result);
          out.classList.toggle("error", !result.ok);
        } finally { apply.disabled = false; }
      });
      const current = JSON.stringify(f.value) !== JSON.stringify(f.default) ? el("b", { class: "changed" }, " CHANGED") : el("span", { class: "dim" }, " default");
      return el("div", { class: "fault" },
        el("label", { for: "fault-" + f.name }, el("code", {}, f.name), current),
        control.node, apply, out,
        el("p", { class: "desc" }, `${f.description} (now ${JSON.stringify(f.value)}, default ${JSON.stringify(f.default)})`));
    });
    const reset = el("button", { type: "button", id: "faults-reset" }, "Reset every switch to its default");
    reset.addEventListener("click", async () => {
      const result = await api("PUT", "/api/faults/", {});
      delete container.dataset.loaded;
      if (result.ok) renderFaults(result.data);
    });
    container.replaceChildren(...rows, reset);
  }

  async function pool(count, concurrency, work) {
    let next = 0;
    async function worker() { while (next < count) { const i = next++; await work(i); } }
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  }
  function tally(counts) { return Object.entries(counts).map(([k, v]) => `${k}: ${v}`).join(", "); }

  async function transferBurst() {
    const out = $("burst-transfers-out");
    const n = cfg.transfer_burst;
    out.textContent = "preparing accounts…";
    let accounts = await api("GET", "/api/accounts/?limit=500");
    if (!accounts.ok) { out.textContent = "accounts: " + problem(accounts); return; }
    let mine = accounts.data.results.filter((a) => a.owner_id === cfg.user.id && a.currency === "EUR");
    if (!mine.length) {
      const created = await api("POST", "/api/accounts/", { currency: "EUR" });
      if (!created.ok) { out.textContent = "open account: " + problem(created); return; }
      mine = [created.data];
    }
    const source = mine[0];
    let targets = accounts.data.results.filter((a) => a.owner_id !== cfg.user.id && a.currency === "EUR");
    if (!targets.length) {
      const created = await api("POST", "/api/accounts/", { currency: "EUR" });
      if (!created.ok) { out.textContent = "open account: " + problem(created); return; }
      targets = [created.data];
    }
    if (parseFloat(source.balance) < n) {
      const dep = await api("POST", `/api/accounts/${source.id}/deposits/`, { amount: `${n * 2}.00` });
      if (!dep.ok) { out.textContent = "deposit: " + problem(dep); return; }
    }
    const counts = {};
    const run = uuid();
    const started = performance.now();
    await pool(n, 8, async (i) => {
      const destination = targets[i % targets.length];
      let key = `${i}`;
      try {
        const r = await api("POST", "/api/transfers/", { source: source.id, destination: destination.id, amount: "1.00", currency: "EUR" },
          { "Idempotency-Key": `lab-${run}-${i}` });
        key = r.status === 202 ? "accepted" : (r.data && r.data.code) || `HTTP ${r.status}`;
      } catch (error) { key = "network error"; }
      counts[key] = (counts[key] || 0) + 1;
      if (i % 20 === 0) out.textContent = `sending… ${tally(counts)}`;
    });
    out.textContent = `${n} transfers of 1.00 EUR from #${source.id} in ${fmt((performance.now() - started) / 1000, 1)} s: ${tally(counts)}. Watch the states move.`;
    out.dataset.done = "1";
  }

  async function celebrityStorm() {
    const out = $("burst-storm-out");
    const deadline = performance.now() + cfg.storm_seconds * 1000;
    const counts = {};
    let sent = 0;
    async function worker(w) {
      while (performance.now() < deadline) {
        const key = sent % 5 === 4 ? `fan:${w}:${sent % 97}` : "celebrity";
        sent++;
        try {
          const r = await api("POST", `/api/sharding/counters/${encodeURIComponent(key)}/increment`, { by: 1 });
          const label = r.ok ? (key === "celebrity" ? `celebrity on ${r.data.shard}` : "other keys") : (r.data && r.data.code) || `HTTP ${r.status}`;
          counts[label] = (counts[label] || 0) + 1;
        } catch (error) { counts["network error"] = (counts["network error"] || 0) + 1; }
        if (sent % 50 === 0) out.textContent = `storming… ${sent} increments`;
      }
    }
    await Promise.all(Array.from({ length: 12 }, (_, w) => worker(w)));
    const counter = await api("GET", "/api/sharding/counters/celebrity?fresh=true");
    const state = counter.ok ? ` celebrity = ${fmt(counter.data.value, 0)}, ${counter.data.hot ? "HOT, slots on " + counter.data.slots.map((s) => s.shard).join(", ") : "not hot (yet)"}.` : "";
    out.textContent = `${sent} increments in ${cfg.storm_seconds} s (${fmt(sent / cfg.storm_seconds)}/s): ${tally(counts)}.${state}`;
  }

  async function consistencyPairs() {
    const out = $("burst-pairs-out");
    const results = [];
    for (const level of ["strong", "session", "eventual"]) {
      const row = { level, pairs: 0, stale: 0, served: {}, errors: 0 };
      for (let i = 0; i < cfg.pairs_per_level; i++) {
        out.textContent = `${level}: pair ${i + 1} of ${cfg.pairs_per_level}…`;
        const write = await api("PATCH", "/api/profiles/me/", { bio: `lab ${level} ${i} ${Date.now()}` });
        if (!write.ok) { row.errors++; continue; }
        const read = await api("GET", "/api/profiles/me/", undefined, { "X-Consistency": level, "Cache-Control": "no-cache" });
        if (!read.ok) { row.errors++; continue; }
        row.pairs++;
        if (read.data.version < write.data.version) row.stale++;
        const by = read.headers.get("X-Served-By") || "?";
        row.served[by] = (row.served[by] || 0) + 1;
      }
      results.push(row);
    }
    const table = el("table", {},
      el("thead", {}, el("tr", {}, ...["level", "pairs", "stale reads", "served by", "errors"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...results.map((r) => el("tr", {}, el("th", { scope: "row" }, r.level), el("td", {}, r.pairs), el("td", {}, `${r.stale}${r.stale ? " STALE" : ""}`), el("td", {}, tally(r.served)), el("td", {}, r.errors)))));
    const chart = bars(results.map((r) => ({ label: r.level, value: r.stale, text: `${r.stale} of ${r.pairs} stale` })), { label: "stale read-backs per consistency level", labelWidth: 70 });
    out.replaceChildren(table, chart, el("p", { class: "dim" }, "Set replica_delay_ms above to make eventual reads visibly stale."));
  }

  function renderStrategy(doc) {
    if (!doc.available) {
      replaceChildren("strategy", el("p", {}, "No comparison stored yet: run ", el("code", {}, "make bench"), " (it runs manage.py consistency_compare)."));
      return;
    }
    const names = Object.keys(doc.strategies).sort();
    const stale = bars(names.map((n) => ({ label: n, value: doc.strategies[n].stale_read_backs_pct || 0, text: `${fmt(doc.strategies[n].stale_read_backs_pct || 0)} % stale` })), { label: "stale read-backs per strategy", labelWidth: 120 });
    const primary = bars(names.map((n) => ({ label: n, value: doc.strategies[n].primary_share_pct || 0, text: `${fmt(doc.strategies[n].primary_share_pct || 0)} % on primary` })), { label: "share of reads on the primary per strategy", labelWidth: 120 });
    replaceChildren("strategy", el("p", { class: "dim" }, `run ${doc.run}, ${new Date(doc.finished_at).toLocaleString()}`),
      el("figure", {}, el("figcaption", {}, "stale read-backs (lower is better)"), stale),
      el("figure", {}, el("figcaption", {}, "reads served by the primary (lower is cheaper)"), primary));
  }

  function bindButton(id, action) {
    const button = $(id);
    if (!button) return;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try { await action(); } catch (error) { $(id + "-out").textContent = "failed: " + error.message; } finally { button.disabled = false; }
    });
  }

  // ---------- loop ----------
  async function cycle() {
    if (document.hidden) { renderSourceStatus(); return; }
    const slow = tick % cfg.slow_every === 0;
    const reconcile = tick % cfg.reconcile_every === 0;
    tick++;
    const jobs = [
      poll("metrics", "/metrics", renderMetrics),
      poll("stats", "/api/sharding/stats/", renderStats),
      poll("readyz", "/readyz", renderReady, { accept: (r) => r.status === 200 || (r.status === 503 && r.data && r.data.checks) }),
    ];
    if (slow) {
      jobs.push(poll("transfers", "/api/transfers/?limit=5", (page) => renderTransfers(page.results)));
      if (cfg.staff) jobs.push(poll("faults", "/api/faults/", renderFaults));
    }
    if (reconcile && cfg.staff) {
      jobs.push(poll("reconciliation", "/api/ledger/reconciliation/", renderReconciliation));
    }
    await Promise.all(jobs);
  }
  async function loop() {
    const started = performance.now();
    await cycle();
    timer = setTimeout(loop, Math.max(200, cfg.poll_ms - (performance.now() - started)));
  }

  if (!cfg.staff) {
    const node = $("conservation");
    node.className = "big unknown";
    node.textContent = "Invariant check (reconciliation) is staff-only";
    $("saga-inflight").textContent = "staff only";
  }
  bindButton("burst-transfers", transferBurst);
  bindButton("burst-storm", celebrityStorm);
  bindButton("burst-pairs", consistencyPairs);
  if (cfg.staff) api("GET", "/lab/api/strategy-comparison/").then((r) => (r.ok ? renderStrategy(r.data) : replaceChildren("strategy", el("p", {}, problem(r)))));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) { clearTimeout(timer); loop(); } else renderSourceStatus();
  });
  loop();
})();

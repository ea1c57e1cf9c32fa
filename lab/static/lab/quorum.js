/* State Lab, quorum panel: the ring and a key's preference list, the nodes' states in force
   (with staff switches), and write-then-read pairs at a chosen W and R with the stale-read rate
   they measure. Plain JavaScript, no dependencies; reads only the public API. */
(function () {
  "use strict";

  const root = document.getElementById("panel-quorum");
  if (!root) return;
  const cfg = JSON.parse(document.getElementById("lab-config").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 2000;
  const N = 3;
  const INKS = ["#1f2933", "#2563eb", "#b45309", "#15803d", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f"];
  let ring = null;
  let nodes = [];
  let timer = null;
  let running = false;
  const pairs = { checked: 0, stale: 0, errors: 0, writes: [], reads: [] };

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
  function clock(date) { return date.toTimeString().slice(0, 8); }
  function median(values) {
    if (!values.length) return null;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)];
  }

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
  function source(ok, text) {
    const node = $("quorum-src");
    node.textContent = ok ? `nodes: live ${clock(new Date())}` : `nodes: STALE (${text})`;
    node.classList.toggle("stale", !ok);
    root.classList.toggle("is-stale", !ok);
  }

  // ---------- the ring ----------
  function inkOf(name) { return INKS[Math.max(0, (ring ? ring.nodes.indexOf(name) : 0)) % INKS.length]; }

  function drawRing(doc) {
    const size = 240, c = size / 2, radius = 92;
    const box = svg("svg", { viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": "consistent-hashing ring with virtual nodes" });
    box.append(svg("title", {}, `${doc.nodes.length} nodes × ${doc.vnodes} virtual nodes`));
    const point = (fraction, r) => {
      const angle = fraction * 2 * Math.PI - Math.PI / 2;
      return [c + r * Math.cos(angle), c + r * Math.sin(angle)];
    };
    // Each token owns the arc that ends at it (from the previous token).
    const tokens = doc.tokens;
    tokens.forEach(([position, owner], i) => {
      const previous = i === 0 ? tokens[tokens.length - 1][0] - 1 : tokens[i - 1][0];
      const [x1, y1] = point(previous, radius), [x2, y2] = point(position, radius);
      const large = position - previous > 0.5 ? 1 : 0;
      const arc = svg("path", { d: `M${x1.toFixed(1)},${y1.toFixed(1)} A${radius},${radius} 0 ${large} 1 ${x2.toFixed(1)},${y2.toFixed(1)}`, class: "q-arc", stroke: inkOf(owner) });
      arc.append(svg("title", {}, `${owner} (virtual node ending at ${position})`));
      box.append(arc);
    });
    doc.nodes.forEach((name, i) => {
      box.append(svg("rect", { x: c - 30, y: c - 44 + i * 16, width: 10, height: 10, fill: inkOf(name) }));
      box.append(svg("text", { x: c - 16, y: c - 35 + i * 16, class: "q-lbl" }, `${name} ${(100 * doc.shares[name]).toFixed(0)} %`));
    });
    if (doc.key) {
      const [kx, ky] = point(doc.key.position, radius + 14);
      const [ix, iy] = point(doc.key.position, radius - 10);
      box.append(svg("line", { x1: ix, y1: iy, x2: kx, y2: ky, stroke: "var(--bad)", "stroke-width": 2 }));
      const marker = svg("circle", { cx: kx, cy: ky, r: 5, class: "q-key" });
      marker.append(svg("title", {}, `${doc.key.key} at ${doc.key.position}`));
      box.append(marker);
    }
    $("quorum-ring").replaceChildren(box);
    const list = $("quorum-pref");
    if (!doc.key) { list.replaceChildren(); return; }
    const items = doc.key.preference_list.map((name, i) => el("li", { class: "preferred" }, `${name}${i === 0 ? " (first on the ring)" : ""}`));
    doc.key.fallbacks.forEach((name) => items.push(el("li", { class: "dim" }, `${name}: fallback (sloppy quorum)`)));
    list.replaceChildren(...items);
  }

  async function loadRing() {
    const key = $("quorum-key").value;
    const n = $("quorum-n").value || N;
    const result = await api("GET", `/api/quorum/ring/?key=${encodeURIComponent(key)}&n=${n}`);
    if (!result.ok) { $("quorum-pref").replaceChildren(el("li", { class: "error" }, problem(result))); return; }
    ring = result.data;
    const select = $("quorum-n");
    if (!select.options.length) {
      ring.nodes.forEach((_, i) => select.append(el("option", { value: i + 1 }, i + 1)));
      select.value = String(ring.defaults.n);
    }
    drawRing(ring);
  }

  // ---------- nodes ----------
  function switches(node) {
    const delay = el("input", { type: "number", min: 1, max: 60000, value: node.delay_ms || 100, "aria-label": `${node.name} delay ms` });
    const jitter = el("input", { type: "number", min: 0, max: 60000, value: node.jitter_ms || 100, "aria-label": `${node.name} jitter ms` });
    const how = el("select", { "aria-label": `${node.name}: how to take it down` },
      ...(node.control === "processes" ? ["stop", "freeze", "cut"] : ["cut"]).map((h) => el("option", { value: h }, h)));
    const out = el("span", { class: "out", "aria-live": "polite" });
    const send = async (body, button) => {
      button.disabled = true;
      out.textContent = "…";
      try {
        const result = await api("PUT", `/api/quorum/nodes/${node.name}`, body);
        out.textContent = result.ok ? "" : problem(result);
        out.classList.toggle("error", !result.ok);
        await pollNodes();
      } finally { button.disabled = false; }
    };
    const up = el("button", { type: "button", "data-quorum-node": node.name, "data-state": "up" }, "up");
    const slow = el("button", { type: "button", "data-quorum-node": node.name, "data-state": "slow" }, "slow");
    const down = el("button", { type: "button", "data-quorum-node": node.name, "data-state": "down" }, "down");
    up.addEventListener("click", () => send({ state: "up" }, up));
    slow.addEventListener("click", () => send({ state: "slow", delay_ms: parseInt(delay.value, 10), jitter_ms: parseInt(jitter.value, 10) }, slow));
    down.addEventListener("click", () => send({ state: "down", how: how.value }, down));
    return el("div", { class: "q-switch" }, up, delay, jitter, slow, how, down, out);
  }

  function renderNodes() {
    const container = $("quorum-nodes");
    if (container.contains(document.activeElement)) return; // keep a field being edited
    const preferred = ring && ring.key ? ring.key.preference_list : [];
    const head = ["node", "state", "how", "delay / jitter", "process", "connections"];
    if (cfg.staff) head.push("switch (staff)");
    const rows = nodes.map((node) => {
      const route = node.route || {};
      const cells = [
        el("th", { scope: "row" }, node.name, preferred.includes(node.name) ? " ★" : ""),
        el("td", { "data-testid": `quorum-state-${node.name}` }, node.state.toUpperCase()),
        el("td", {}, node.how || ""),
        el("td", {}, node.state === "slow" ? `${node.delay_ms} / ${node.jitter_ms} ms` : "–"),
        el("td", {}, node.process + (node.pid ? ` (${node.pid})` : "")),
        el("td", {}, route.open_connections === undefined ? "–" : route.open_connections),
      ];
      if (cfg.staff) cells.push(el("td", {}, switches(node)));
      return el("tr", { class: node.state === "up" ? "" : node.state }, ...cells);
    });
    container.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows)),
      el("p", { class: "dim" }, "★ in the key's preference list"));
  }

  async function pollNodes() {
    try {
      const result = await api("GET", "/api/quorum/nodes/");
      if (!result.ok) throw new Error(problem(result));
      nodes = result.data;
      renderNodes();
      source(true);
    } catch (error) {
      source(false, error.name === "AbortError" ? "timed out" : error.message);
    }
  }

  // ---------- W/R pairs ----------
  function renderPairs() {
    const rate = $("quorum-stale-rate");
    const value = pairs.checked ? (100 * pairs.stale) / pairs.checked : null;
    rate.textContent = value === null ? "–" : `${value.toFixed(1)} %`;
    rate.classList.toggle("bad", pairs.stale > 0);
    rate.classList.toggle("good", pairs.checked > 0 && pairs.stale === 0);
    $("quorum-pairs-count").textContent = `${pairs.checked} (${pairs.stale} stale)`;
    const w = median(pairs.writes), r = median(pairs.reads);
    $("quorum-latency").textContent = w === null ? "–" : `${w.toFixed(0)} ms / ${r === null ? "–" : r.toFixed(0) + " ms"}`;
    $("quorum-errors").textContent = String(pairs.errors);
  }

  function renderOverlap() {
    const w = parseInt($("quorum-w").value, 10), r = parseInt($("quorum-r").value, 10);
    $("quorum-overlap").textContent = w + r > N ? `W + R = ${w + r} > ${N}: every read meets the last acknowledged write` : `W + R = ${w + r} ≤ ${N}: a read may miss it`;
  }

  async function onePair(key, index, w, r) {
    const value = `${key}#${index}`;
    let started = performance.now();
    const written = await api("PUT", `/api/quorum/${encodeURIComponent(key)}?n=${N}&w=${w}`, { value });
    if (!written.ok) { pairs.errors++; return; }
    pairs.writes.push(performance.now() - started);
    started = performance.now();
    const read = await api("GET", `/api/quorum/${encodeURIComponent(key)}?n=${N}&r=${r}&w=${w}`);
    if (!(read.ok || read.status === 300 || read.status === 404)) { pairs.errors++; return; }
    pairs.reads.push(performance.now() - started);
    const seen = read.ok || read.status === 300 ? read.data.siblings.map((s) => s.value) : [];
    pairs.checked++;
    if (!seen.includes(value)) pairs.stale++;
  }

  async function runPairs() {
    const button = $("quorum-pairs");
    if (running) { running = false; button.textContent = "Start"; return; }
    running = true;
    button.textContent = "Stop";
    Object.assign(pairs, { checked: 0, stale: 0, errors: 0, writes: [], reads: [] });
    const w = parseInt($("quorum-w").value, 10), r = parseInt($("quorum-r").value, 10);
    const base = `lab-${Date.now().toString(36)}`;
    let index = 0;
    while (running) {
      if (!document.hidden) {
        await onePair(`${base}-${index % 16}`, index, w, r);
        index++;
        renderPairs();
      } else {
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  // ---------- start ----------
  for (const id of ["quorum-w", "quorum-r"]) {
    const select = $(id);
    for (let i = 1; i <= N; i++) select.append(el("option", { value: i }, i));
    select.value = "1";
    select.addEventListener("change", renderOverlap);
  }
  renderOverlap();
  $("quorum-key-form").addEventListener("submit", (event) => { event.preventDefault(); loadRing().then(renderNodes); });
  $("quorum-pairs-form").addEventListener("submit", (event) => { event.preventDefault(); runPairs(); });
  loadRing().then(pollNodes);
  async function loop() {
    if (!document.hidden) await pollNodes();
    timer = setTimeout(loop, POLL_MS);
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) { clearTimeout(timer); loop(); } });
  timer = setTimeout(loop, POLL_MS);
})();

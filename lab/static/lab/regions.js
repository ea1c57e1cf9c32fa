/* State Lab, regions panel: polls /api/regions/, draws the three regions and their links,
   the convergence clock after a heal; staff buttons partition, heal, write, repair and run the
   split-brain vignette through the public API. Plain JavaScript, no dependencies. */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("lab-config").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const POSITIONS = { r1: [150, 40], r2: [55, 190], r3: [245, 190] };
  const POLL_MS = 2000;
  let last = null;
  let timer = null;
  let polling = false;

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const child of children) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function fmt(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 2 }); }

  async function api(method, url, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") init.headers["X-CSRFToken"] = cfg.csrf;
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const response = await fetch(url, init);
    const type = response.headers.get("Content-Type") || "";
    return { status: response.status, ok: response.ok, data: type.includes("json") ? await response.json() : null };
  }
  function say(text) { const out = $("regions-out"); if (out) out.textContent = text; }
  function problem(r) { return `HTTP ${r.status} ${(r.data && r.data.code) || ""} ${(r.data && r.data.detail) || ""}`; }

  function drawMap(doc) {
    const map = $("regions-map");
    map.replaceChildren();
    const links = {};
    for (const link of doc.links || []) links[link.name] = link;
    const pairs = [["r1", "r2"], ["r1", "r3"], ["r2", "r3"]];
    for (const [a, b] of pairs) {
      const states = [links[`${a}->${b}`], links[`${b}->${a}`]].filter(Boolean).map((l) => l.state);
      const cls = states.includes("cut") ? "link cut" : states.includes("lost") ? "link lost" : "link";
      const [x1, y1] = POSITIONS[a], [x2, y2] = POSITIONS[b];
      const line = svg("line", { x1, y1, x2, y2, class: cls });
      line.append(svg("title", {}, `${a}↔${b}: ${states.join(" / ") || "unknown"}`));
      map.append(line);
      // one word when both directions agree; the two slanted links labelled outside the triangle
      const label = [...new Set(states)].join(" / ");
      const side = x1 === x2 || y1 === y2 ? 0 : (x1 + x2) / 2 < POSITIONS.r1[0] ? -1 : 1;
      const anchor = side < 0 ? "end" : side > 0 ? "start" : "middle";
      map.append(svg("text", { x: (x1 + x2) / 2 + 6 * side, y: (y1 + y2) / 2 - 4, class: "note", style: `text-anchor: ${anchor}` }, label));
    }
    for (const region of doc.regions || []) {
      const [x, y] = POSITIONS[region.name];
      map.append(svg("circle", { cx: x, cy: y, r: 28, class: region.up ? "node" : "node down" }));
      map.append(svg("text", { x, y: y + 2, class: "name" }, region.name));
      map.append(svg("text", { x, y: y + 15, class: "note" }, region.up ? `${fmt(region.keys)} keys` : "down"));
    }
  }

  function clock(doc) {
    const node = $("regions-clock");
    const net = doc.network || {};
    node.className = "regions-clock";
    if (!doc.configured) { node.textContent = "regions not started (python -m devstack up --group regions; make run starts them)"; return; }
    if (net.partitioned) {
      const since = net.partitioned_at ? (Date.now() - Date.parse(net.partitioned_at)) / 1000 : null;
      node.classList.add("partitioned");
      node.textContent = `partitioned for ${fmt(since)} s: each side keeps writing, regions diverge`;
    } else if (net.healed_at && !net.converged_at) {
      node.textContent = `healed ${fmt((Date.now() - Date.parse(net.healed_at)) / 1000)} s ago: converging…`;
    } else if (net.convergence_s !== null && net.convergence_s !== undefined) {
      node.classList.add("converged");
      node.textContent = `converged ${fmt(net.convergence_s)} s after the heal${doc.converged ? "; every region equal now" : ""}`;
    } else {
      node.textContent = doc.converged ? "every region equal (same Merkle root)" : "regions differ (replication in flight)";
    }
  }

  function render(doc) {
    last = doc;
    drawMap(doc);
    clock(doc);
    const net = doc.network || {};
    $("regions-groups").textContent = (net.groups || []).map((g) => `{${g.join(", ")}}`).join(" | ") || "–";
    const roots = new Set((doc.regions || []).map((r) => r.root).filter(Boolean));
    $("regions-roots").textContent = doc.configured ? (doc.converged ? "all equal" : `${roots.size} different`) : "–";
    const up = (doc.regions || []).filter((r) => r.up);
    $("regions-siblings").textContent = up.length ? up.map((r) => `${r.name} ${fmt(r.siblings_open)}`).join(", ") : "–";
    $("regions-discarded").textContent = up.length ? fmt(Math.max(...up.map((r) => r.lww_discarded || 0))) : "–";
    $("regions-table").tBodies[0].replaceChildren(...(doc.regions || []).map((r) => el("tr", r.up ? {} : { class: "down" },
      el("th", { scope: "row" }, r.name), el("td", {}, fmt(r.keys)), el("td", {}, fmt(r.rows)), el("td", {}, fmt(r.tombstones)),
      el("td", {}, el("code", {}, (r.root || r.error || "").slice(0, 12))), el("td", {}, fmt(r.siblings_open)))));
    $("regions-links").tBodies[0].replaceChildren(...(doc.links || []).map((l) => el("tr", ["streaming", "catching_up"].includes(l.state) ? {} : { class: "down" },
      el("th", { scope: "row" }, l.name), el("td", {}, l.state), el("td", {}, fmt(l.lag_bytes)), el("td", {}, fmt(l.delay_ms)), el("td", {}, fmt(l.last_message_age_s)))));
    const vignette = doc.last_vignette;
    if (vignette) {
      const parts = [el("h3", {}, `Split-brain vignette: ${vignette.state}`), el("pre", {}, (vignette.timeline || []).join("\n"))];
      if (vignette.table) parts.push(el("pre", {}, vignette.table));
      if (vignette.error) parts.push(el("p", { class: "error" }, vignette.error));
      $("regions-vignette").replaceChildren(...parts);
    }
  }

  async function poll() {
    timer = null;
    if (document.hidden || polling) return; // resumed by visibilitychange
    polling = true;
    try {
      const r = await api("GET", "/api/regions/");
      if (r.ok) render(r.data); else $("regions-clock").textContent = problem(r);
    } catch (error) {
      $("regions-clock").textContent = "regions: " + error.message;
    } finally {
      polling = false;
    }
    if (!document.hidden) timer = setTimeout(poll, POLL_MS);
  }

  async function network(groups) {
    const r = await api("PUT", "/api/regions/network", { groups });
    say(r.ok ? (r.data.healed ? "healed: anti-entropy follows" : "network set") : problem(r));
  }
  async function writeBothSides() {
    const stamp = Date.now().toString(36);
    let done = 0, failed = 0;
    const jobs = [];
    for (let i = 0; i < 30; i++) {
      const kind = ["lww", "mv", "counter", "orset", "doc"][i % 5];
      const key = `lab-${stamp}-${i}`;
      const body = { lww: { value: "x" }, mv: { value: "x" }, counter: { increment: 1 }, orset: { add: "x" }, doc: { insert: { index: 0, text: "x" } } }[kind];
      for (const region of ["r1", "r2"]) {
        const own = JSON.parse(JSON.stringify(body));
        if (own.value) own.value = `${region}-${i}`;
        if (own.add) own.add = region;
        if (own.insert) own.insert.text = `${region} `;
        jobs.push(api("PUT", `/api/regions/${region}/${kind}/${key}`, own).then((r) => (r.ok ? done++ : failed++)));
      }
    }
    await Promise.all(jobs);
    say(`${done} writes acknowledged, ${failed} refused (keys lab-${stamp}-*, on r1 and r2)`);
  }
  async function antiEntropy() {
    const r = await api("POST", "/api/regions/anti-entropy");
    say(r.ok ? `anti-entropy: ${r.data.hashes_compared} hashes compared, ${r.data.keys_repaired} keys repaired, ${r.data.rows_copied} rows copied` : problem(r));
  }
  async function vignette() {
    const r = await api("POST", "/api/regions/split-brain");
    say(r.ok ? "vignette started: its timeline appears below" : problem(r));
  }
  function bind(id, action) {
    const button = $(id);
    if (!button) return;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try { await action(); } catch (error) { say("failed: " + error.message); } finally { button.disabled = false; }
    });
  }

  bind("regions-split", () => network([["r1"], ["r2", "r3"]]));
  bind("regions-heal", () => network([["r1", "r2", "r3"]]));
  bind("regions-write", writeBothSides);
  bind("regions-ae", antiEntropy);
  bind("regions-vignette-run", vignette);
  setInterval(() => { if (last && !document.hidden) clock(last); }, 250);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null && !polling) poll();
  });
  poll();
})();

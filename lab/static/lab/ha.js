/* State Lab, HA panel: the Patroni cluster (members, mode, kill, switchover, the failover as
   it happens) and the state machine on etcd. Plain JavaScript, no dependencies. */
(function () {
  "use strict";

  const root = document.getElementById("panel-ha");
  if (!root) return;
  const cfg = JSON.parse(document.getElementById("lab-config").textContent);
  const POLL_MS = 1000;
  const MAX_EVENTS = 40;
  let previous = null;
  const events = [];

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
  function table(headers, rows) {
    return el("table", { class: "tbl" },
      el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c === null || c === undefined ? "–" : c))))));
  }
  async function api(method, url, body) {
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(), 30000);
    const init = { method, credentials: "same-origin", signal: controller.signal, headers: { Accept: "application/json" } };
    if (method !== "GET") init.headers["X-CSRFToken"] = cfg.csrf;
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    try {
      const response = await fetch(url, init);
      const type = response.headers.get("Content-Type") || "";
      return { status: response.status, ok: response.ok, data: type.includes("json") ? await response.json() : await response.text() };
    } catch (error) {
      return { status: 0, ok: false, data: { detail: String(error) } };
    } finally { clearTimeout(timeout); }
  }
  function problem(r) { const d = r.data || {}; return `HTTP ${r.status}${d.code ? " " + d.code : ""}${d.detail ? ": " + d.detail : ""}`; }
  function now() { return new Date().toTimeString().slice(0, 8); }

  function note(text) {
    events.unshift(`${now()} ${text}`);
    events.length = Math.min(events.length, MAX_EVENTS);
    $("ha-events").replaceChildren(...events.map((e) => el("li", {}, e)));
  }

  function compare(status) {
    if (!previous) { note(`leader ${status.leader || "none"}, timeline ${status.timeline ?? "?"}, mode ${status.mode || "?"}`); return; }
    if (status.leader !== previous.leader) note(`leader: ${previous.leader || "none"} → ${status.leader || "none"}`);
    if (status.timeline !== previous.timeline && status.timeline != null) note(`timeline ${previous.timeline ?? "?"} → ${status.timeline}`);
    if (status.mode && status.mode !== previous.mode) note(`mode ${previous.mode} → ${status.mode}`);
    const before = Object.fromEntries(previous.members.map((m) => [m.name, m]));
    for (const m of status.members) {
      const b = before[m.name];
      if (!b) { note(`${m.name} appears (${m.role}, ${m.state})`); continue; }
      if (b.role !== m.role || b.state !== m.state) note(`${m.name}: ${b.role}/${b.state} → ${m.role}/${m.state}`);
    }
    for (const name of Object.keys(before)) if (!status.members.some((m) => m.name === name)) note(`${name} gone from the cluster`);
  }

  function render(status) {
    $("ha-summary").textContent = `leader ${status.leader || "NONE"} · timeline ${status.timeline ?? "?"}` +
      (status.mode ? ` · mode ${status.mode}${status.mode === "async" ? "" : ` (k=${status.sync_node_count}, ${status.synchronous_commit})`}` : "");
    $("ha-members").replaceChildren(table(
      ["member", "role", "state", "timeline", "lag (bytes)", "sync"],
      status.members.map((m) => [m.name, m.role, m.state, m.timeline, m.lag_bytes, m.synchronous ? "yes" : ""])));
    if (status.history) {
      $("ha-history").replaceChildren(status.history.length
        ? table(["timeline", "ended at (byte)", "when", "new leader"], status.history.slice().reverse().map((h) => [h.timeline, h.switch_lsn, h.at, h.new_leader]))
        : el("p", {}, "no failover yet"));
    }
    if (status.etcd) {
      $("ha-etcd").replaceChildren(table(
        ["member", "up", "Raft term", "Raft index", "revision", "leader"],
        status.etcd.map((e) => [e.url || "?", e.ok ? "yes" : `no: ${e.error || ""}`, e.raft_term, e.raft_index, e.revision, e.is_leader ? "★" : ""])));
    }
    if (cfg.staff && status.mode && document.activeElement !== $("ha-mode")) $("ha-mode").value = status.mode;
  }

  async function pollCluster() {
    let status = null;
    if (cfg.staff) {
      const r = await api("GET", "/api/ha/");
      if (r.ok) status = r.data; else $("ha-summary").textContent = problem(r);
    } else {
      const r = await api("GET", "/readyz");
      const check = r.data && r.data.checks && r.data.checks["ha:cluster"];
      if (check && check.members) status = { leader: check.leader, timeline: check.timeline, members: check.members.map((m) => Object.assign({ synchronous: false }, m)) };
      else $("ha-summary").textContent = "cluster status unavailable";
    }
    if (!status) return;
    compare(status);
    previous = status;
    render(status);
  }

  async function pollKeyspace() {
    const r = await api("GET", "/api/smr/");
    if (!r.ok) { $("smr-header").textContent = problem(r); return; }
    $("smr-header").textContent = `revision ${r.data.revision} · Raft term ${r.data.raft_term} · ${r.data.keys.length} keys`;
    $("smr-keys").replaceChildren(r.data.keys.length
      ? table(["key", "value", "mod revision", "version"], r.data.keys.slice(-30).map((k) => [k.key, JSON.stringify(k.value), k.mod_revision, k.version]))
      : el("p", {}, "empty"));
  }

  function parse(text) { try { return JSON.parse(text); } catch (e) { return text; } }

  async function smrSubmit(event) {
    event.preventDefault();
    const op = $("smr-op").value, key = $("smr-key").value.trim();
    const body = { op, key };
    if (op === "increment") body.delta = parseInt($("smr-value").value, 10) || 1;
    if (op === "set" || op === "cas") body.value = parse($("smr-value").value);
    if (op === "cas") body.expected = $("smr-expected").value === "" ? null : parse($("smr-expected").value);
    const r = await api("POST", "/api/smr/ops", body);
    $("smr-out").textContent = r.ok
      ? `${op} ${key} → ${JSON.stringify(r.data.value)} at revision ${r.data.revision}, term ${r.data.raft_term}, index ${r.data.raft_index}`
      : problem(r);
    pollKeyspace();
  }

  async function modeSubmit(event) {
    event.preventDefault();
    $("ha-mode-out").textContent = "applying…";
    const r = await api("PATCH", "/api/ha/", { mode: $("ha-mode").value, sync_node_count: parseInt($("ha-count").value, 10) });
    $("ha-mode-out").textContent = r.ok ? `in force: ${r.data.mode}` : problem(r);
  }

  async function kill() {
    $("ha-action-out").textContent = "killing…";
    const r = await api("POST", "/api/ha/faults/kill-leader");
    if (r.ok) note(`SIGKILL ${r.data.leader}'s postmaster (pid ${r.data.postmaster_pid})`);
    $("ha-action-out").textContent = r.ok ? `killed ${r.data.leader}'s postmaster; watch the timeline` : problem(r);
  }

  async function switchover() {
    $("ha-action-out").textContent = "switching over…";
    const r = await api("POST", "/api/ha/switchover", {});
    $("ha-action-out").textContent = r.ok ? r.data.message : problem(r);
  }

  $("smr-form").addEventListener("submit", smrSubmit);
  if (cfg.staff) {
    $("ha-mode-form").addEventListener("submit", modeSubmit);
    $("ha-kill").addEventListener("click", kill);
    $("ha-switchover").addEventListener("click", switchover);
  }
  async function loop() {
    if (!document.hidden) await Promise.all([pollCluster(), pollKeyspace()]);
    setTimeout(loop, POLL_MS);
  }
  loop();
})();

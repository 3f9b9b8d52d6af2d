// speedlayer web console: read-only pages over the server's JSON under /api/.
// No framework, no build step; charts by the vendored uPlot (global `uPlot`).
// Everything shown from the server goes through textContent, never innerHTML.
"use strict";

const SL = (window.speedlayer = { charts: {}, carChart: null, errors: [] });

// ---------- formatting ----------
function fmtBytes(n) {
  if (n == null || isNaN(n)) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + u[i];
}
function fmtNum(n) {
  if (n == null || isNaN(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(2) + " G";
  if (a >= 1e6) return (n / 1e6).toFixed(2) + " M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + " k";
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}
function fmtMs(v) {
  if (v == null || isNaN(v)) return "–";
  return v < 1 ? (v * 1000).toFixed(0) + " µs" : v.toFixed(v < 10 ? 2 : 0) + " ms";
}
function fmtRate(n) { return fmtNum(n) + "/s"; }
function fmtDur(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}
function fmtAgo(t) {
  if (t == null) return "not since start";
  return fmtDur(Date.now() / 1000 - t) + " ago";
}
function stamp(ms) { return new Date(ms).toISOString().slice(0, 19).replace("T", " "); }
function fmtTtl(ms) { return ms === -2 ? "no such key" : ms === -1 ? "no TTL" : fmtDur(ms / 1000); }

// ---------- DOM helpers ----------
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "onclick") e.addEventListener("click", v);
    else e.setAttribute(k, v);
  }
  for (const c of kids) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}
function card(k, v, cls) { return el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: "v " + (cls || "") }, v)); }
// `cls[i]` overrides column i's class (default: first column left, others right).
function table(headers, rows, cls) {
  const k = (i) => (cls && cls[i]) || (i === 0 ? "l" : "");
  const t = el("table");
  t.append(el("tr", {}, ...headers.map((h, i) => el("th", { class: k(i) }, h))));
  for (const r of rows) t.append(el("tr", {}, ...r.map((c, i) => el("td", { class: k(i) }, c))));
  return t;
}
function setStatus(msg) { document.getElementById("status").textContent = msg || ""; }

async function api(path) {
  const r = await fetch(path, { headers: { accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: "HTTP " + r.status }));
  if (!r.ok) throw new Error(body.error || "HTTP " + r.status);
  return body;
}

// ---------- server page and live charts ----------
const CHARTS = [
  { id: "ops", title: "Requests/s", series: [["writes_per_s", "writes/s", "#2563eb"], ["reads_per_s", "reads/s", "#16a34a"]], fmt: fmtNum },
  { id: "latency", title: "Latency of data requests (ms)", series: [["p50_ms", "p50", "#0891b2"], ["p99_ms", "p99", "#dc2626"]], fmt: fmtMs },
  { id: "memstore", title: "Memstore", series: [["memstore_bytes", "bytes", "#7c3aed"]], fmt: fmtBytes },
  { id: "flush", title: "Flushes and compactions", series: [["flush_queue", "flush queue", "#ea580c"], ["compaction_queue", "compaction queue", "#7c3aed"], ["flushes_per_s", "flushes/s", "#2563eb"], ["compactions_per_s", "compactions/s", "#16a34a"]], fmt: fmtNum },
  { id: "compaction_bytes", title: "Compaction throughput", series: [["compaction_bytes_per_s", "bytes/s", "#16a34a"]], fmt: (v) => fmtBytes(v) + "/s" },
  { id: "stalls", title: "Write stalls and WAL syncs (/s)", series: [["write_stalls_per_s", "stalls/s", "#dc2626"], ["wal_syncs_per_s", "WAL syncs/s", "#2563eb"]], fmt: fmtNum },
  { id: "cache", title: "Block cache hit ratio", series: [["block_cache_hit_ratio", "hit ratio", "#0891b2"]], fmt: (v) => (v == null ? "–" : (v * 100).toFixed(1) + " %") },
  { id: "resp", title: "TTL set service", series: [["resp_commands_per_s", "commands/s", "#7c3aed"], ["resp_keys", "keys", "#ea580c"]], fmt: fmtNum },
];

function makeCharts() {
  const box = document.getElementById("charts");
  for (const c of CHARTS) {
    const div = el("div", { class: "chart", id: "chart-" + c.id });
    box.append(div);
    const opts = {
      title: c.title, width: Math.max(300, div.clientWidth - 14), height: 190,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      series: [{}].concat(c.series.map(([, label, stroke]) => ({ label, stroke, width: 1.5, spanGaps: false, value: (u, v) => c.fmt(v) }))),
      axes: [{}, { size: 70, values: (u, vals) => vals.map((v) => c.fmt(v)) }],
    };
    SL.charts[c.id] = new uPlot(opts, [[]].concat(c.series.map(() => [])), div);
  }
}

function drawCharts(h) {
  const xs = h.samples.map((s) => s.t);
  for (const c of CHARTS) {
    const u = SL.charts[c.id];
    if (u) u.setData([xs].concat(c.series.map(([k]) => h.samples.map((s) => s[k]))));
  }
}

async function refreshOverview() {
  const [s, h] = await Promise.all([api("/api/server"), api("/api/history")]);
  const info = document.getElementById("server-info");
  info.replaceChildren(
    card("binary", s.binary), card("version", s.version), card("build", s.commit + " (" + s.profile + ")"),
    card("uptime", fmtDur(s.uptime_s)),
    ...s.about.map(([k, v]) => card(k, v)),
  );
  if (s.cluster_hosted) info.append(card("cluster: regions hosted here", s.cluster_hosted.map(([t, id]) => t + "/" + id).join(", ") || "none"));
  const last = h.samples[h.samples.length - 1];
  if (last) {
    info.append(card("writes now", fmtRate(last.writes_per_s)), card("reads now", fmtRate(last.reads_per_s)),
      card("memstore", fmtBytes(last.memstore_bytes)), card("block cache hit ratio", last.block_cache_hit_ratio == null ? "–" : (last.block_cache_hit_ratio * 100).toFixed(1) + " %"));
  }
  info.append(el("div", { class: "card" }, el("div", { class: "k" }, "metrics"), el("a", { href: "/metrics" }, "/metrics (Prometheus)")));
  drawCharts(h);
}

// ---------- tables and regions ----------
async function refreshTables() {
  const v = await api("/api/tables");
  const out = document.getElementById("tables");
  const kids = [el("div", { class: "cards" },
    card("block cache", fmtBytes(v.block_cache_bytes)),
    card("cache hits / misses", fmtNum(v.block_cache_hits) + " / " + fmtNum(v.block_cache_misses)),
    card("region split size", v.split_bytes == null ? "no local splits" : fmtBytes(v.split_bytes)))];
  if (v.tables.length === 0) kids.push(el("p", { class: "hint" }, "No tables yet."));
  for (const t of v.tables) {
    kids.push(el("h2", {}, t.name + " ", el("small", {}, "families: " + t.families.join(", "))));
    kids.push(table(
      ["region", "start", "end", "stores", "files", "file size", "memstore", "frozen", "flushes", "last flush", "compactions", "last compaction", "cells written", "split", "state"],
      t.regions.map((r) => [
        el("a", { href: "#region/" + encodeURIComponent(t.name) + "/" + r.id }, String(r.id)),
        r.start || "−∞", r.end || "+∞", r.stores.map((s) => s.family).join(", "), r.files, fmtBytes(r.file_bytes),
        fmtBytes(r.memstore_bytes), r.frozen_memstores, r.flushes, fmtAgo(r.last_flush_seen), r.compactions,
        fmtAgo(r.last_compaction_seen), fmtNum(r.cells_written), r.split_state,
        r.poisoned ? el("span", { class: "bad" }, "refusing writes: " + r.poisoned) : el("span", { class: "ok" }, "serving"),
      ])));
  }
  out.replaceChildren(...kids);
}

async function refreshRegion(tableName, id) {
  const v = await api("/api/tables/" + encodeURIComponent(tableName) + "/regions/" + encodeURIComponent(id));
  document.getElementById("region").replaceChildren(
    el("h2", {}, "Region " + v.id + " of " + v.table),
    el("p", { class: "hint" }, "directory " + v.dir + (v.truncated ? " (list cut at 1000 files)" : "")),
    table(["family", "file", "size", "first row", "last row", "cells", "delete markers", "timestamps"],
      v.files.map((f) => [f.family, f.name, fmtBytes(f.size), f.first_row, f.last_row, fmtNum(f.cells), f.tombstones,
        stamp(f.min_ts) + " … " + stamp(f.max_ts)])),
    el("a", { href: "#tables" }, "← all tables"),
  );
}

// ---------- TTL set service ----------
async function refreshResp() {
  let v, h;
  try {
    [v, h] = await Promise.all([api("/api/resp"), api("/api/history")]);
  } catch (e) {
    document.getElementById("resp-info").replaceChildren(card("TTL set service", e.message));
    return;
  }
  document.getElementById("resp-info").replaceChildren(
    card("address", v.addr), card("keys", fmtNum(v.keys)), card("keys with TTL", fmtNum(v.volatile_keys)),
    card("members", fmtNum(v.members)), card("memory (estimate)", fmtBytes(v.memory_bytes)),
    card("clients", v.clients + " / " + v.max_clients), card("rejected connections", fmtNum(v.rejected_connections)),
    card("expired keys", fmtNum(v.expired_keys)), card("commands", fmtNum(v.commands_processed)),
    card("appendfsync", v.appendfsync), card("AOF size", fmtBytes(v.aof_size) + " (base " + fmtBytes(v.aof_base_size) + ")"),
    card("AOF writes", v.aof_write_failing ? "failing" : "ok", v.aof_write_failing ? "bad" : "ok"),
    card("AOF rewrites", v.aof_rewrites + (v.aof_rewrites ? ", last " + fmtAgo(v.aof_last_rewrite_seen) : "") + (v.aof_last_rewrite_failed ? " (last failed)" : " (last ok)"), v.aof_last_rewrite_failed ? "bad" : ""),
    card("AOF fsync lag", v.aof_fsync_lag_seconds.toFixed(1) + " s"),
  );
  const rates = h.resp_commands_per_s || {};
  document.getElementById("resp-commands").replaceChildren(
    table(["command", "ok", "errors", "now"], v.commands.map(([n, ok, err]) => [n, fmtNum(ok), fmtNum(err), fmtRate(rates[n] || 0)])));
}

async function lookup(ev) {
  ev.preventDefault();
  const key = document.getElementById("lookup-key").value;
  const out = document.getElementById("lookup-result");
  try {
    const v = await api("/api/resp/key?key=" + encodeURIComponent(key));
    out.replaceChildren(el("div", { class: "cards" }, card("key", v.key), card("members", fmtNum(v.cardinality)), card("TTL", fmtTtl(v.pttl_ms))),
      v.members.length ? table(["member"], v.members.map((m) => [m])) : el("p", { class: "hint" }, v.exists ? "empty" : "no such key"),
      v.cardinality > v.members.length ? el("p", { class: "hint" }, "first " + v.members.length + " members shown") : "");
  } catch (e) {
    out.replaceChildren(el("p", { class: "bad" }, e.message));
  }
}

// ---------- fleet ----------
function dayOf(d) { return d.toISOString().slice(0, 10); }
function compact(s) { return s.replace(/[-T:]/g, "").padEnd(14, "0").slice(0, 14); }
function toInput(s14) { return s14.slice(0, 4) + "-" + s14.slice(4, 6) + "-" + s14.slice(6, 8) + "T" + s14.slice(8, 10) + ":" + s14.slice(10, 12) + ":" + s14.slice(12, 14); }
function shift(s14, secs) {
  const t = Date.UTC(+s14.slice(0, 4), +s14.slice(4, 6) - 1, +s14.slice(6, 8), +s14.slice(8, 10), +s14.slice(10, 12), +s14.slice(12, 14)) + secs * 1000;
  return new Date(t).toISOString().replace(/[-T:]/g, "").slice(0, 14);
}

async function loadFleet(ev) {
  if (ev) ev.preventDefault();
  const day = document.getElementById("fleet-day").value;
  const out = document.getElementById("fleet-list");
  try {
    const v = await api("/api/fleet/flagged?day=" + encodeURIComponent(day));
    SL.fleet = v;
    const rows = v.cars.map((c) => {
      const speeds = c.windows.map((w) => w.avg_speed).filter((x) => x != null);
      return [
        el("a", { class: "car", "data-car": c.car, onclick: () => openCar(c) }, c.car),
        c.windows.length,
        speeds.length ? Math.max(...speeds).toFixed(1) + " km/h" : "–",
        c.windows.map((w) => w.start.slice(8, 10) + ":" + w.start.slice(10, 12) + ":" + w.start.slice(12, 14) + "–" + w.end.slice(8, 10) + ":" + w.end.slice(10, 12) + ":" + w.end.slice(12, 14) + " avg " + (w.avg_speed == null ? "?" : w.avg_speed.toFixed(1))).join("; "),
      ];
    });
    out.replaceChildren(
      el("p", {}, v.cars.length + " car(s) flagged on " + v.day + "; set TTL " + fmtTtl(v.set_pttl_ms) + (v.truncated ? " (list cut)" : "")),
      table(["car", "windows", "highest window average", "windows (start–end, average km/h)"], rows, [null, null, null, "l wrap"]));
  } catch (e) {
    out.replaceChildren(el("p", { class: "bad" }, e.message));
  }
}

function openCar(c) {
  document.getElementById("car-panel").hidden = false;
  document.getElementById("car-title").textContent = "Speed of " + c.car;
  SL.car = c.car;
  let from, to;
  if (c.windows.length) {
    from = shift(c.windows[0].start, -300);
    to = shift(c.windows[c.windows.length - 1].end, 300);
  } else {
    from = SL.fleet.day + "000000";
    to = shift(from, 86399);
  }
  document.getElementById("car-from").value = toInput(from);
  document.getElementById("car-to").value = toInput(to);
  return plotCar();
}

async function plotCar(ev) {
  if (ev) ev.preventDefault();
  const from = compact(document.getElementById("car-from").value);
  const to = compact(document.getElementById("car-to").value);
  const threshold = +document.getElementById("fleet-threshold").value;
  const note = document.getElementById("car-note");
  let v;
  try {
    v = await api("/api/fleet/speed?car=" + encodeURIComponent(SL.car) + "&from=" + from + "&to=" + to);
  } catch (e) {
    note.textContent = e.message;
    return;
  }
  note.textContent = v.t.length + " events, " + v.windows.length + " flagged window(s) shaded" + (v.truncated ? " (cut at the point limit)" : "") + "; times as logged (shown as UTC).";
  const box = document.getElementById("car-chart");
  if (SL.carChart) SL.carChart.destroy();
  const shade = (u) => {
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = "rgba(220, 38, 38, 0.15)";
    for (const w of v.windows) {
      if (w.start_s == null || w.end_s == null) continue;
      const x0 = u.valToPos(w.start_s, "x", true), x1 = u.valToPos(w.end_s, "x", true);
      ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
    }
    ctx.restore();
  };
  SL.carChart = new uPlot({
    width: Math.min(1100, box.clientWidth || 900), height: 320,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    series: [{}, { label: "speed km/h", stroke: "#2563eb", width: 1.5 }, { label: "threshold", stroke: "#dc2626", dash: [6, 4], width: 1.5 }],
    axes: [{}, { label: "km/h" }],
    scales: { y: { range: (u, lo, hi) => [0, Math.max(hi, threshold) * 1.1] } },
    hooks: { drawClear: [shade] },
  }, [v.t, v.speed, v.t.map(() => threshold)], box);
}

// ---------- cluster ----------
function hexKey(h) {
  if (!h) return "";
  let out = "";
  for (let i = 0; i + 1 < h.length; i += 2) {
    const b = parseInt(h.slice(i, i + 2), 16);
    out += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : "\\x" + h.slice(i, i + 2);
  }
  return out;
}

async function refreshCluster() {
  const out = document.getElementById("cluster");
  let v;
  try {
    v = await api("/api/cluster");
  } catch (e) {
    out.replaceChildren(el("p", { class: "hint" }, "No cluster: " + e.message));
    return;
  }
  const open = {};
  for (const r of v.regions) if (r.state === "open" && r.server) open[r.server] = (open[r.server] || 0) + 1;
  const moving = v.regions.filter((r) => r.state !== "open").length;
  out.replaceChildren(
    el("div", { class: "cards" },
      card("cluster", v.cluster), card("servers", String(v.servers.length)), card("master", v.master || "none"),
      card("regions", String(v.regions.length)),
      card("in transition", String(moving), moving ? "bad" : "ok"),
      card("etcd revision", String(v.revision))),
    el("h2", {}, "Servers"),
    table(["", "server", "gRPC", "console", "RESP", "open regions", "started", "version"],
      v.servers.map((m) => [m.id === v.master ? "master" : "", m.id, m.grpc,
        el("a", { href: "http://" + m.http + "/#cluster" }, m.http), m.resp || "–", String(open[m.id] || 0),
        stamp(m.started_ms), m.version])),
    el("h2", {}, "Regions"),
    table(["table", "region", "start", "end", "state", "server", "epoch"],
      v.regions.map((r) => [r.table, String(r.id), hexKey(r.start) || "−∞", hexKey(r.end) || "+∞",
        r.target ? r.state + " → " + r.target : r.state, r.server || "–", String(r.epoch)])),
  );
}

// ---------- routing ----------
const PAGES = { overview: refreshOverview, tables: refreshTables, resp: refreshResp, fleet: null, cluster: refreshCluster };
let timer = null;
function route() {
  const parts = (location.hash.slice(1) || "overview").split("/");
  const page = parts[0] === "region" ? "region" : PAGES.hasOwnProperty(parts[0]) ? parts[0] : "overview";
  for (const s of document.querySelectorAll(".page")) s.hidden = s.id !== "page-" + page;
  for (const a of document.querySelectorAll("nav a[data-page]")) a.classList.toggle("active", a.dataset.page === (page === "region" ? "tables" : page));
  clearInterval(timer);
  const refresh = page === "region" ? () => refreshRegion(decodeURIComponent(parts[1] || ""), parts[2] || "0") : PAGES[page];
  if (!refresh) return;
  const tick = () => refresh().then(() => setStatus(""), (e) => setStatus("refresh failed: " + e.message));
  tick();
  timer = setInterval(tick, 1000);
}

window.addEventListener("error", (e) => SL.errors.push(String(e.message)));
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("fleet-day").value = dayOf(new Date());
  document.getElementById("fleet-form").addEventListener("submit", loadFleet);
  document.getElementById("car-form").addEventListener("submit", plotCar);
  document.getElementById("lookup").addEventListener("submit", lookup);
  makeCharts();
  window.addEventListener("hashchange", route);
  route();
});

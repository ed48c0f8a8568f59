// BlueGate ops page: plain JavaScript, no build step, no external resource.
// Everything shown comes from /api/v1 with the token kept in sessionStorage (gone
// when the tab closes). Text from the server is only ever set as textContent.
"use strict";

const API = "/api/v1";
const SVG = "http://www.w3.org/2000/svg";
const STATUSES = ["to_contact", "quarantined", "tested_negative", "positive"];
const state = { token: sessionStorage.getItem("bg-token") || "", role: null, caseId: null, zones: [], sites: [] };

// ---------------------------------------------------------------- helpers
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function say(text, isError) {
  const m = $("message");
  m.textContent = text;
  m.className = "message" + (isError ? " error" : "");
  m.hidden = !text;
}

function short(iso) {
  // "2026-03-02T07:15:00Z" -> "03-02 07:15"
  if (!iso) return "";
  return iso.slice(5, 10) + " " + iso.slice(11, 16);
}

function today() {
  return new Date().toISOString().slice(0, 10);
}

async function api(method, path, body, raw) {
  const headers = { Authorization: "Bearer " + state.token };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(API + path, init);
  if (!resp.ok) {
    let msg = resp.status + " " + resp.statusText;
    try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
    if (resp.status === 401) signOut();
    throw new Error(msg);
  }
  return raw ? resp : resp.json();
}

function guard(fn) {
  return async (ev) => {
    if (ev && ev.preventDefault) ev.preventDefault();
    try {
      say("");
      await fn(ev);
    } catch (err) {
      say(err.message, true);
    }
  };
}

// ---------------------------------------------------------------- session
async function signIn() {
  const me = await api("GET", "/me");
  state.role = me.role;
  sessionStorage.setItem("bg-token", state.token);
  $("who-label").textContent = (me.label || "token " + me.token_id) + " · " + me.role;
  $("who").hidden = false;
  $("login").hidden = true;
  $("tabs").hidden = false;
  $("intro").hidden = true;
  const z = await api("GET", "/zones");
  state.zones = z.zones;
  state.sites = z.sites;
  $("occ-zone").replaceChildren(...z.zones.map((x) => el("option", { value: x.zone }, x.zone + (x.kind ? " (" + x.kind + ")" : ""))));
  $("gate-site").replaceChildren(...z.sites.map((s) => el("option", { value: s }, s)));
  show("cases");
  await loadCaseList("");
}

function signOut() {
  sessionStorage.removeItem("bg-token");
  state.token = "";
  $("who").hidden = true;
  $("login").hidden = false;
  $("tabs").hidden = true;
  $("intro").hidden = false;
  for (const s of document.querySelectorAll("section[id^=tab-]")) s.hidden = true;
}

function show(tab) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.tab === tab);
  for (const s of document.querySelectorAll("section[id^=tab-]")) s.hidden = s.id !== "tab-" + tab;
  if (tab === "fleet") loadFleet().catch((e) => say(e.message, true));
}

// ---------------------------------------------------------------- cases
async function loadCaseList(subject) {
  const q = subject ? "?subject=" + encodeURIComponent(subject) : "";
  const data = await api("GET", "/cases" + q);
  const list = $("case-list");
  if (!data.cases.length) {
    list.replaceChildren(el("p", { class: "meta" }, subject ? "No case for " + subject + ". Open one below." : "No cases yet."));
    if (subject) {
      $("case-open").open = true;
      $("open-subject").value = subject;
      $("open-kind").value = subject.includes(":") ? "device" : "person";
    }
    return;
  }
  list.replaceChildren(el("ul", { class: "cases" }, data.cases.map((c) =>
    el("li", {}, el("button", { type: "button", class: "link case-link", "data-case": c.id, onclick: guard(() => openCase(c.id)) },
      "Case " + c.id + ": " + c.subject), " ",
      el("span", { class: "badge " + c.status }, c.status), " ",
      el("span", { class: "meta" }, c.contacts + " contacts · " + short(c.from) + " → " + short(c.to))))));
  if (subject && data.cases.length === 1) await openCase(data.cases[0].id);
}

async function openCase(id) {
  const c = await api("GET", "/cases/" + id);
  state.caseId = id;
  renderCase(c);
}

function renderCase(c) {
  $("case-view").hidden = false;
  $("case-title").textContent = "Case " + c.id + ": " + (c.subject_name ? c.subject_name + " (" + c.subject + ")" : c.subject) + (c.status === "closed" ? " · closed" : "");
  const wr = c.params.window_rule, rule = c.params.rule;
  $("case-meta").textContent = "Window " + c.from + " → " + c.to + " (" + wr.days_before + " days before " + wr.basis + " " + wr.reference_date + "). Rule: " + rule.min_minutes + " min in " + rule.window_h + " h; depth " + c.depth + ". Traced " + (c.computed_at || "-") + (c.label ? ". " + c.label : "");
  for (const id of ["case-expand", "case-retrace", "case-close"]) $(id).disabled = c.status !== "open";
  $("case-expand").disabled = c.status !== "open" || c.depth === 2;
  $("case-warnings").replaceChildren(...c.warnings.map((w) => el("p", { class: "warning" }, w.gateway + ": " + w.message)));
  $("case-places-n").textContent = "(" + c.exposures.length + ")";
  fill($("places-table").tBodies[0], c.exposures.map((e) => el("tr", {}, el("td", {}, e.zone), el("td", {}, e.gateway), el("td", {}, short(e.from)), el("td", {}, short(e.to)))));
  const current = c.contacts.filter((x) => x.current);
  $("case-contacts-n").textContent = "(" + current.filter((x) => x.level === 1).length + " F1, " + current.filter((x) => x.level === 2).length + " F2)";
  fill($("contacts-table").tBodies[0], c.contacts.map((x) => {
    const sel = el("select", { "aria-label": "status", disabled: c.status !== "open" || null, onchange: guard(async (ev) => {
      await api("PUT", "/cases/" + c.id + "/contacts/" + x.id + "/status", { status: ev.target.value });
      await openCase(c.id);
    }) }, STATUSES.map((s) => el("option", { value: s, selected: s === x.status || null }, s.replace("_", " "))));
    const who = el("td", {}, x.name || x.person || x.key, x.name ? el("small", {}, " " + (x.person || "")) : null,
      x.person_kind && x.person_kind !== "worker" ? el("span", { class: "badge" }, x.person_kind) : null);
    return el("tr", { class: "s-" + x.status + (x.current ? "" : " stale"), "data-contact": x.id },
      el("td", {}, "F" + x.level), who, el("td", {}, x.phone || ""), el("td", {}, x.zone || ""),
      el("td", {}, short(x.first)), el("td", { class: "num" }, x.minutes.toFixed(1)), el("td", {}, x["class"]), el("td", {}, sel));
  }));
  fill($("locations-table").tBodies[0], c.locations.map((l) => el("tr", {},
    el("td", {}, l.zone), el("td", {}, l.site || ""), el("td", {}, short(l.from)), el("td", {}, short(l.to)),
    el("td", {}, l.beacon_keys.length ? l.beacon_keys.map((b) => b.beacon).join(", ") : "—"),
    el("td", {}, el("span", { class: "badge " + l.status }, l.status)),
    el("td", {}, l.status === "draft" ? el("button", { type: "button", class: "small", onclick: guard(async () => {
      await api("PUT", "/cases/" + c.id + "/locations/" + l.id, { state: "published" });
      await openCase(c.id);
    }) }, "Publish") : l.status === "published" ? el("button", { type: "button", class: "small", onclick: guard(async () => {
      await api("PUT", "/cases/" + c.id + "/locations/" + l.id, { state: "withdrawn" });
      await openCase(c.id);
    }) }, "Withdraw") : ""))));
  $("notes").replaceChildren(...c.notes.map((n) => el("li", {}, el("span", { class: "meta" }, short(n.t) + " " + (n.author || "") + ": "), n.text)));
  drawNetwork(c);
}

// The contact network: the case in the middle, F1 on a ring, F2 on an outer ring
// next to the F1 they came through. Colour is the contact's status.
function drawNetwork(c) {
  const box = $("case-network");
  const W = 420, H = 340, cx = W / 2, cy = H / 2;
  const f1 = c.contacts.filter((x) => x.current && x.level === 1);
  const f2 = c.contacts.filter((x) => x.current && x.level === 2);
  const pos = new Map();
  pos.set("case", [cx, cy]);
  const r1 = f2.length ? 85 : 120, r2 = 150;
  f1.forEach((x, i) => {
    const a = (2 * Math.PI * i) / Math.max(f1.length, 1) - Math.PI / 2;
    pos.set(x, [cx + r1 * Math.cos(a), cy + r1 * Math.sin(a)]);
    x._angle = a;
  });
  const byRef = new Map();
  for (const x of f1) { byRef.set(x.person || x.key, x); byRef.set(x.key, x); }
  const groups = new Map();
  for (const x of f2) {
    const parent = x.via.map((v) => byRef.get(v)).find((p) => p) || null;
    x._parents = x.via.map((v) => byRef.get(v)).filter((p) => p);
    const k = parent ? parent.id : 0;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(x);
  }
  for (const [k, members] of groups) {
    const parent = f1.find((p) => p.id === k);
    const base = parent ? parent._angle : 0;
    const spread = Math.min(0.9, (2 * Math.PI) / Math.max(f1.length, 1) * 0.8);
    members.forEach((x, i) => {
      const a = base + (members.length > 1 ? (i / (members.length - 1) - 0.5) * spread : 0);
      pos.set(x, [cx + r2 * Math.cos(a), cy + r2 * Math.sin(a)]);
    });
  }
  const edges = svg("g", { class: "edges" });
  const nodes = svg("g", { class: "nodes" });
  const line = (a, b, cls, minutes) => edges.append(svg("line", { x1: a[0].toFixed(1), y1: a[1].toFixed(1), x2: b[0].toFixed(1), y2: b[1].toFixed(1), class: cls,
    "stroke-width": Math.min(6, 1 + (minutes || 0) / 30).toFixed(1) }, svg("title", {}, (minutes || 0).toFixed(0) + " min")));
  for (const x of f1) line(pos.get("case"), pos.get(x), "e1", x.minutes);
  for (const x of f2) for (const p of (x._parents.length ? x._parents : ["case"])) line(pos.get(p), pos.get(x), "e2", x.minutes);
  const node = (p, r, cls, label, title) => {
    nodes.append(svg("g", { class: "node " + cls, transform: "translate(" + p[0].toFixed(1) + "," + p[1].toFixed(1) + ")" },
      svg("circle", { r }), svg("text", { y: r + 11, "text-anchor": "middle" }, label.length > 14 ? label.slice(0, 13) + "…" : label),
      svg("title", {}, title)));
  };
  node(pos.get("case"), 14, "root s-positive", c.subject_name || c.subject, "case " + c.subject);
  for (const x of f1) node(pos.get(x), 9, "f1 s-" + x.status, x.name || x.person || x.key, "F1 " + (x.name || x.person || x.key) + ", " + x.minutes.toFixed(0) + " min in " + x.zone + ", " + x.status);
  for (const x of f2) node(pos.get(x), 6, "f2 s-" + x.status, x.name || x.person || x.key, "F2 " + (x.name || x.person || x.key) + ", " + x.status);
  const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "contact network", class: "network" }, edges, nodes);
  if (!f1.length) chart.append(svg("text", { x: cx, y: cy + 40, "text-anchor": "middle", class: "empty" }, "no contacts under the rule"));
  box.replaceChildren(chart);
}

async function download(path, name) {
  const resp = await api("GET", path, undefined, true);
  const url = URL.createObjectURL(await resp.blob());
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

async function printCase() {
  const resp = await api("GET", "/cases/" + state.caseId + "/print", undefined, true);
  const url = URL.createObjectURL(new Blob([await resp.text()], { type: "text/html" }));
  const w = window.open(url, "_blank");
  if (w) w.addEventListener("load", () => w.print());
  else say("Allow pop-ups to print the case page.", true);
}

// ---------------------------------------------------------------- occupancy
async function loadOccupancy() {
  const zone = $("occ-zone").value;
  const day = $("occ-day").value || today();
  if (!zone) throw new Error("no zone known yet");
  const next = new Date(Date.parse(day + "T00:00:00Z") + 86400000).toISOString().slice(0, 10);
  const q = "?zone=" + encodeURIComponent(zone) + "&from=" + day + "T00:00:00Z&to=" + next + "T00:00:00Z&bucket_min=" + $("occ-bucket").value;
  const data = await api("GET", "/occupancy" + q);
  $("occ-summary").textContent = zone + " on " + day + ": peak " + data.peak + " people; gateways " + (data.gateways.join(", ") || "none");
  drawOccupancy(data);
}

function drawOccupancy(data) {
  const W = 720, H = 260, L = 34, R = 8, T = 10, B = 26;
  const n = data.buckets.length;
  const maxY = Math.max(1, ...data.buckets.map((b) => Math.max(b.present, b.reported || 0)));
  const bw = (W - L - R) / Math.max(n, 1);
  const y = (v) => T + (H - T - B) * (1 - v / maxY);
  const g = svg("g", {});
  const ticks = Math.min(maxY, 5);
  for (let i = 0; i <= ticks; i++) {
    const v = Math.round((maxY * i) / ticks);
    g.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }), svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", class: "axis" }, v));
  }
  const bars = svg("g", { class: "bars" });
  const pts = [];
  data.buckets.forEach((b, i) => {
    const x = L + i * bw;
    const h = H - B - y(b.present);
    bars.append(svg("rect", { x: (x + 0.5).toFixed(1), y: y(b.present).toFixed(1), width: Math.max(bw - 1, 0.5).toFixed(1), height: Math.max(h, 0).toFixed(1), "data-present": b.present },
      svg("title", {}, b.t.slice(11, 16) + " UTC: " + b.present + " present" + (b.reported !== null ? ", gateway counted " + b.reported : ""))));
    if (b.reported !== null) pts.push((x + bw / 2).toFixed(1) + "," + y(b.reported).toFixed(1));
    const hour = b.t.slice(11, 16);
    if (hour.endsWith(":00") && Number(hour.slice(0, 2)) % 3 === 0) {
      g.append(svg("line", { x1: x, x2: x, y1: H - B, y2: H - B + 4, class: "tick" }));
      g.append(svg("text", { x: x, y: H - 8, "text-anchor": "middle", class: "axis" }, hour));
    }
  });
  const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "occupancy over the day", class: "occupancy" }, g, bars);
  if (pts.length) chart.append(svg("polyline", { points: pts.join(" "), class: "reported" }));
  $("occ-chart").replaceChildren(chart);
}

// ---------------------------------------------------------------- gate
async function loadGate() {
  const site = $("gate-site").value;
  const day = $("gate-day").value || today();
  if (!site) throw new Error("no site known yet");
  const data = await api("GET", "/gatelog?site=" + encodeURIComponent(site) + "&day=" + day);
  const card = (label, value) => el("div", { class: "card" }, el("b", {}, String(value)), el("span", {}, label));
  $("gate-summary").replaceChildren(card("entries", data.entries), card("exits", data.exits), card("on site now", data.headcount), card("visitors today", data.registered_visitors.length));
  drawHourly(data.hourly);
  fill($("gate-table").tBodies[0], data.events.map((e) => el("tr", { class: e.kind === "visitor" ? "visitor" : "" },
    el("td", {}, e.t.slice(11, 19)), el("td", { class: "dir-" + e.direction }, e.direction === "in" ? "in ▸" : "◂ out"),
    el("td", {}, e.name || e.person || e.key || "(unknown)"), el("td", {}, e.kind || ""), el("td", {}, e.host || ""), el("td", {}, e.gateway))));
  fill($("visitor-table").tBodies[0], data.registered_visitors.map((v) => el("tr", {},
    el("td", {}, v.name), el("td", {}, v.company || ""), el("td", {}, v.host || ""), el("td", {}, v.phone || ""), el("td", {}, v.key),
    el("td", {}, v.passages.map((p) => p.t.slice(11, 16) + " " + p.direction).join(", ")),
    el("td", {}, v.on_site ? "yes" : "no"),
    el("td", {}, v.checked_out ? "left" : el("button", { type: "button", class: "small", onclick: guard(async () => {
      await api("POST", "/visitors/" + v.id + "/checkout");
      await loadGate();
    }) }, "Check out")))));
}

function drawHourly(hours) {
  const W = 720, H = 150, L = 28, B = 20, T = 8;
  const maxY = Math.max(1, ...hours.map((h) => Math.max(h.in, h.out)));
  const bw = (W - L) / 24;
  const y = (v) => T + (H - T - B) * (1 - v / maxY);
  const g = svg("g", {});
  hours.forEach((h, i) => {
    const x = L + i * bw;
    g.append(svg("rect", { x: (x + 1).toFixed(1), y: y(h.in).toFixed(1), width: (bw / 2 - 1).toFixed(1), height: (H - B - y(h.in)).toFixed(1), class: "in" }, svg("title", {}, h.hour + ":00 " + h.in + " in")));
    g.append(svg("rect", { x: (x + bw / 2).toFixed(1), y: y(h.out).toFixed(1), width: (bw / 2 - 1).toFixed(1), height: (H - B - y(h.out)).toFixed(1), class: "out" }, svg("title", {}, h.hour + ":00 " + h.out + " out")));
    if (i % 3 === 0) g.append(svg("text", { x, y: H - 5, class: "axis" }, String(h.hour).padStart(2, "0")));
  });
  g.append(svg("text", { x: L - 4, y: y(maxY) + 4, "text-anchor": "end", class: "axis" }, maxY));
  $("gate-chart").replaceChildren(svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "entries and exits per hour", class: "hourly" }, g));
}

// ---------------------------------------------------------------- fleet
function age(s) {
  if (s === null || s === undefined) return "never";
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

async function loadFleet() {
  const f = await api("GET", "/fleet");
  const s = f.summary;
  $("fleet-summary").textContent = s.gateways + " gateways: " + s.ok + " ok, " + s.warn + " warn, " + s.down + " down · " + s.beacons + " beacons";
  fill($("fleet-table").tBodies[0], f.gateways.map((g) => el("tr", { class: "st-" + g.state, "data-gateway": g.gateway },
    el("td", {}, g.gateway), el("td", {}, el("span", { class: "badge st-" + g.state }, g.state)),
    el("td", {}, (g.site || "?") + " / " + (g.zone || "?")), el("td", {}, g.status),
    el("td", {}, age(g.last_heard_age_s)),
    el("td", {}, g.outbox_depth === null ? "?" : g.outbox_depth + (g.outbox_oldest_age_s ? " (" + age(g.outbox_oldest_age_s).replace(" ago", "") + ")" : "")),
    el("td", { class: "num" }, g.missing_records ? g.missing_records + " missing" : "0"),
    el("td", {}, g.clock), el("td", {}, g.radio),
    el("td", { class: "problems" }, g.problems.join("; ")))));
  fill($("beacon-table").tBodies[0], f.beacons.map((b) => el("tr", { class: "st-" + b.state },
    el("td", {}, b.beacon), el("td", {}, el("span", { class: "badge st-" + b.state }, b.state)),
    el("td", {}, b.site + " / " + (b.zone || "?")), el("td", {}, b.heard_by.join(", ") || "—"), el("td", { class: "problems" }, b.problems.join("; ")))));
}

// ---------------------------------------------------------------- wiring
document.addEventListener("DOMContentLoaded", () => {
  $("occ-day").value = today();
  $("gate-day").value = today();
  $("login").addEventListener("submit", guard(async () => {
    state.token = $("token").value.trim();
    $("token").value = "";
    await signIn();
  }));
  $("signout").addEventListener("click", signOut);
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.tab));
  $("case-search-form").addEventListener("submit", guard(() => loadCaseList($("case-search").value.trim())));
  $("case-open-form").addEventListener("submit", guard(async () => {
    const body = {
      subject_kind: $("open-kind").value, subject: $("open-subject").value.trim(),
      onset_date: $("open-onset").value || null, test_date: $("open-test").value || null,
      isolation: $("open-isolation").value || null, days_before: Number($("open-days").value || 2),
      label: $("open-label").value || null, rule: { min_minutes: Number($("open-min").value || 15) },
    };
    const c = await api("POST", "/cases", body);
    $("case-open").open = false;
    state.caseId = c.id;
    renderCase(c);
    await loadCaseList("");
  }));
  $("case-expand").addEventListener("click", guard(async () => renderCase(await api("POST", "/cases/" + state.caseId + "/expand"))));
  $("case-retrace").addEventListener("click", guard(async () => renderCase(await api("POST", "/cases/" + state.caseId + "/trace", {}))));
  $("case-csv").addEventListener("click", guard(() => download("/cases/" + state.caseId + "/export.csv", "case-" + state.caseId + ".csv")));
  $("case-print").addEventListener("click", guard(printCase));
  $("case-close").addEventListener("click", guard(async () => {
    if (!window.confirm("Close this case? Statuses can no longer be changed.")) return;
    renderCase(await api("POST", "/cases/" + state.caseId + "/close", {}));
  }));
  $("note-form").addEventListener("submit", guard(async () => {
    const text = $("note-text").value.trim();
    if (!text) return;
    await api("POST", "/cases/" + state.caseId + "/notes", { text });
    $("note-text").value = "";
    await openCase(state.caseId);
  }));
  $("occ-form").addEventListener("submit", guard(loadOccupancy));
  $("gate-form").addEventListener("submit", guard(loadGate));
  $("visitor-form").addEventListener("submit", guard(async () => {
    await api("POST", "/visitors", {
      site: $("gate-site").value, name: $("v-name").value.trim(), company: $("v-company").value || null,
      host: $("v-host").value || null, phone: $("v-phone").value || null, key: $("v-key").value.trim(),
    });
    for (const id of ["v-name", "v-company", "v-host", "v-phone", "v-key"]) $(id).value = "";
    await loadGate();
  }));
  $("fleet-refresh").addEventListener("click", guard(loadFleet));
  if (state.token) signIn().catch((e) => { say(e.message, true); signOut(); });
});

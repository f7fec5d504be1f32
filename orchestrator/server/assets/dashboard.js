// synod dashboard. Vanilla JavaScript, no build step, no external code.
// Reads the JSON API, follows a run's events over SSE (EventSource resumes
// with Last-Event-ID after a reconnect), and posts approval decisions.
// Text is only ever inserted with textContent: payloads come redacted from
// the server and are never interpreted as HTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

// Every run event type the server sends (RunEventKind::cloud_event_type),
// plus the reflection and re-planning events later versions may add.
const EVENT_TYPES = [
  "synod.run.started", "synod.run.planned", "synod.run.resumed",
  "synod.run.succeeded", "synod.run.failed", "synod.run.cancelled",
  "synod.step.started", "synod.step.succeeded", "synod.step.failed",
  "synod.step.retry_scheduled", "synod.step.skipped", "synod.step.cancelled",
  "synod.step.fanned_out", "synod.step.item_started", "synod.step.item_succeeded",
  "synod.step.item_failed",
  "synod.step.reflected", "synod.step.input_redacted", "synod.run.replanned", "synod.plan.revised",
  "synod.binding.started", "synod.binding.attempt", "synod.binding.delivered",
  "synod.binding.failed", "synod.binding.skipped",
  "synod.approval.requested", "synod.approval.decided", "synod.approval.timed_out",
];

const STATES = [
  ["pending", "--pending"], ["running", "--running"], ["succeeded", "--succeeded"],
  ["reflecting", "--reflect"], ["retry_scheduled", "--retry"], ["failed", "--failed"], ["timed_out", "--timeout"],
  ["skipped", "--skipped"], ["cancelled", "--cancelled"],
];

// ---------- small helpers ----------

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function badge(status) {
  return el("span", { class: "badge", "data-status": status, text: status.replace("_", " ") });
}

function formatTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { hour12: false });
}

function clockTime(iso) {
  const date = new Date(iso);
  return date.toLocaleTimeString(undefined, { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

function formatDuration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "–";
  if (ms < 1000) return Math.round(ms) + " ms";
  const seconds = ms / 1000;
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 2 : 1) + " s";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return minutes + "m " + Math.round(seconds % 60) + "s";
  return Math.floor(minutes / 60) + "h " + (minutes % 60) + "m";
}

function runDuration(record) {
  const start = Date.parse(record.created_at);
  const end = record.ended_at ? Date.parse(record.ended_at) : Date.now();
  return end - start;
}

function truncate(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

// ---------- access control ----------
// The API token is kept in sessionStorage (this tab only, gone when it
// closes) and sent as `Authorization: Bearer`; EventSource cannot send
// headers, so the event stream gets it as `?access_token=` (accepted on that
// route only). `GET /whoami` says which roles it has: approve/reject are
// shown only to approvers.

const TOKEN_KEY = "synod.token";
let who = null; // {subject, roles, can: {read, operate, approve, admin}, auth_enabled}

function apiToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders(headers) {
  const token = apiToken();
  return token ? Object.assign({}, headers, { authorization: "Bearer " + token }) : headers;
}

let whoamiAsked = 0; // only the latest answer counts (token changes race)

async function refreshWhoami() {
  const label = $("whoami");
  const asked = ++whoamiAsked;
  try {
    const response = await fetch("/whoami", { headers: authHeaders({ accept: "application/json" }) });
    const body = await response.json().catch(() => ({}));
    if (asked !== whoamiAsked) return;
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    who = body;
    label.textContent = body.auth_enabled ? `${body.subject} · ${body.roles.join(", ")}` : "access control off";
    $("token-input").hidden = body.auth_enabled && !!apiToken();
    $("token-save").hidden = $("token-input").hidden;
    $("token-clear").hidden = !apiToken();
  } catch (error) {
    if (asked !== whoamiAsked) return;
    who = null;
    label.textContent = apiToken() ? "token refused" : "enter an API token";
    $("token-input").hidden = false;
    $("token-save").hidden = false;
    $("token-clear").hidden = !apiToken();
  }
}

function canApprove() {
  return !!(who && who.can && who.can.approve);
}

function setupTokenForm() {
  $("token-form").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const value = $("token-input").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    refreshWhoami().then(route);
  });
  $("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    refreshWhoami().then(route);
  });
}

async function getJson(path) {
  const response = await fetch(path, { headers: authHeaders({ accept: "application/json" }) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
}

// ---------- routing ----------

let page = null; // the active view's teardown

function route() {
  if (page) { page(); page = null; }
  const pathRun = location.pathname.match(/^\/ui\/runs\/([^/]+)/);
  const hashRun = location.hash.match(/^#\/runs\/([^/?]+)/);
  for (const view of document.querySelectorAll(".view")) view.hidden = true;
  for (const link of document.querySelectorAll("[data-nav]")) link.classList.remove("active");
  if (hashRun || (pathRun && !location.hash.startsWith("#/experts") && location.hash !== "#/")) {
    const id = decodeURIComponent((hashRun || pathRun)[1]);
    $("view-run").hidden = false;
    page = showRun(id);
  } else if (location.hash.startsWith("#/experts")) {
    $("view-experts").hidden = false;
    document.querySelector('[data-nav="experts"]').classList.add("active");
    page = showExperts();
  } else {
    $("view-home").hidden = false;
    document.querySelector('[data-nav="runs"]').classList.add("active");
    page = showHome();
  }
}

function setConnection(state) {
  const node = $("connection");
  node.dataset.state = state;
  node.textContent = { live: "live", reconnecting: "reconnecting…", closed: "stream closed", idle: "idle" }[state] || state;
}

// Calls `refresh` now and every `ms` until the returned stop function runs.
function poll(refresh, ms) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    try { await refresh(); } catch (error) { console.warn(error); }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

// ---------- home: runs and experts ----------

function showHome() {
  setConnection("idle");
  const stopRuns = poll(refreshRuns, 2000);
  const stopExperts = poll(() => refreshExperts(false), 5000);
  return () => { stopRuns(); stopExperts(); };
}

async function refreshRuns() {
  const runs = await getJson("/runs?limit=100");
  const body = $("runs-body");
  clear(body);
  $("runs-empty").hidden = runs.length > 0;
  for (const run of runs) {
    const link = el("a", { href: "#/runs/" + run.run_id, class: "mono", text: run.run_id.slice(0, 8) });
    const row = el("tr", { "data-run": run.run_id, "data-status": run.status },
      el("td", {}, badge(run.status)),
      el("td", { text: run.workflow }),
      el("td", {}, link),
      el("td", { text: formatTime(run.created_at) }),
      el("td", { class: "num", text: formatDuration(runDuration(run)) }));
    row.addEventListener("click", () => { location.hash = "#/runs/" + run.run_id; });
    body.append(row);
  }
  $("runs-updated").textContent = runs.length + " shown · updated " + new Date().toLocaleTimeString(undefined, { hour12: false });
}

function instanceHealth(expert) {
  const healths = expert.instances.map((i) => i.health);
  if (healths.includes("healthy")) return "healthy";
  if (healths.includes("broken")) return "broken";
  if (healths.includes("unhealthy")) return "unhealthy";
  return "unknown";
}

function meanLatency(expert) {
  const values = expert.instances.map((i) => i.latency_ewma_ms).filter((v) => v > 0);
  if (!values.length) return null;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

async function refreshExperts(detailed) {
  const experts = await getJson("/experts");
  experts.sort((a, b) => a.name.localeCompare(b.name));
  if (!detailed) {
    const box = $("experts-summary");
    clear(box);
    if (!experts.length) box.append(el("p", { class: "empty", text: "No experts registered." }));
    for (const expert of experts) {
      const health = instanceHealth(expert);
      const latency = meanLatency(expert);
      box.append(el("div", { class: "expert-line", "data-expert": expert.name, "data-health": health },
        el("span", {}, el("span", { class: "dot", "data-health": health }), expert.name,
          el("span", { class: "muted small", text: "  v" + expert.version })),
        el("span", { class: "lat", text: `${expert.instances.length} inst · ${latency === null ? "–" : latency.toFixed(1) + " ms"}` })));
    }
    return;
  }
  const list = $("experts-list");
  clear(list);
  if (!experts.length) list.append(el("p", { class: "empty", text: "No experts registered." }));
  for (const expert of experts) {
    const table = el("table", { class: "table" },
      el("thead", {}, el("tr", {}, ...["Instance", "Health", "Latency", "Calls", "Failures", "In flight"].map((h, i) => el("th", { class: i > 1 ? "num" : "", text: h })))));
    const tbody = el("tbody");
    for (const instance of expert.instances) {
      tbody.append(el("tr", { "data-instance": instance.instance_id },
        el("td", { class: "mono", text: instance.endpoint }),
        el("td", {}, badge(instance.health)),
        el("td", { class: "num", text: instance.latency_ewma_ms > 0 ? instance.latency_ewma_ms.toFixed(1) + " ms" : "–" }),
        el("td", { class: "num", text: instance.calls }),
        el("td", { class: "num", text: instance.failures }),
        el("td", { class: "num", text: instance.outstanding })));
    }
    table.append(tbody);
    const chips = el("div", { class: "chips" });
    for (const skill of expert.skills) {
      const flow = (skill.consumes || []).join(", ") + " → " + (skill.produces || "");
      chips.append(el("span", { class: "chip", title: skill.description + "\n" + flow, text: skill.name }));
    }
    list.append(el("div", { class: "expert-card", "data-expert": expert.name },
      el("h3", {}, el("span", { class: "dot", "data-health": instanceHealth(expert) }), expert.name,
        el("span", { class: "muted small", text: "  v" + expert.version + (expert.external ? " · external" : "") })),
      el("div", { class: "desc", text: expert.description }),
      table, chips));
  }
  $("experts-updated").textContent = experts.length + " experts · updated " + new Date().toLocaleTimeString(undefined, { hour12: false });
}

function showExperts() {
  setConnection("idle");
  return poll(() => refreshExperts(true), 3000);
}

// ---------- run page: state folded from events ----------

function newRunState(id) {
  return {
    id,
    workflow: "",
    status: "pending",
    createdAt: null,
    endedAt: null,
    error: null,
    lastSeq: 0,
    revisions: 0,
    steps: new Map(), // id -> step
    order: [],
    bindings: new Map(), // name -> {state, detail}
    approvals: new Map(), // binding -> {roles, timeout_ms, seq}
    planner: null,
    events: 0,
  };
}

function addStep(state, planned) {
  if (state.steps.has(planned.id)) {
    const step = state.steps.get(planned.id);
    step.uses = planned.uses || step.uses;
    step.needs = planned.needs || step.needs;
    return;
  }
  state.order.push(planned.id);
  state.steps.set(planned.id, {
    id: planned.id, uses: planned.uses || "", needs: planned.needs || [], state: "pending",
    attempts: 0, retries: 0, rounds: 0, items: null, itemsDone: 0, input: undefined,
    output: undefined, error: null, duration_ms: null, confidence: null, instance: null,
    verdict: null, guarded: null,
  });
}

function stepOf(state, data, subject) {
  const id = data.step || subject;
  if (!id) return null;
  if (!state.steps.has(id)) addStep(state, { id, uses: data.uses || "", needs: [] });
  return state.steps.get(id);
}

// Applies one CloudEvent to the run state; returns a one-line summary.
function applyEvent(state, event) {
  const data = event.data || {};
  const type = event.type;
  state.events += 1;
  state.lastSeq = Math.max(state.lastSeq, event.synodseq);
  const step = type.startsWith("synod.step.") ? stepOf(state, data, event.subject) : null;
  switch (type) {
    case "synod.run.started":
      state.workflow = data.workflow;
      state.status = "running";
      if (!state.createdAt) state.createdAt = event.time;
      for (const planned of data.steps || []) addStep(state, planned);
      return `${(data.steps || []).length} steps planned`;
    case "synod.run.planned":
      state.planner = data;
      return `${data.planner} planner, goal ${data.goal}`;
    case "synod.run.replanned":
    case "synod.plan.revised":
      state.revisions += 1;
      for (const planned of data.steps || data.added || []) addStep(state, planned);
      return `plan revision ${state.revisions}`;
    case "synod.run.resumed":
      state.status = "running";
      return `resumed; ${(data.completed_steps || []).length} steps kept, ${(data.interrupted_steps || []).length} re-run`;
    case "synod.step.started":
      step.state = "running";
      step.attempts = data.attempt;
      step.uses = data.uses || step.uses;
      step.input = data.input;
      return `attempt ${data.attempt} → ${data.uses}`;
    case "synod.step.succeeded":
      step.state = "succeeded";
      step.output = data.output;
      step.duration_ms = data.duration_ms;
      step.confidence = data.confidence;
      step.instance = data.instance;
      step.error = null;
      return `attempt ${data.attempt} in ${formatDuration(data.duration_ms)}, confidence ${Number(data.confidence).toFixed(2)}`;
    case "synod.step.failed": {
      const error = data.error || {};
      step.error = `${error.code_text || ""} ${error.message || ""}`.trim();
      if (data.will_retry) step.state = "retry_scheduled";
      else step.state = error.code_text === "SYN-R0002" ? "timed_out" : "failed";
      return `attempt ${data.attempt}: ${step.error}${data.will_retry ? " (will retry)" : ""}`;
    }
    case "synod.step.retry_scheduled":
      step.state = "retry_scheduled";
      step.retries += 1;
      return `attempt ${data.next_attempt} in ${formatDuration(data.delay_ms)}`;
    case "synod.step.skipped":
      step.state = "skipped";
      step.error = data.reason;
      return data.reason;
    case "synod.step.cancelled":
      step.state = "cancelled";
      return "cancelled";
    case "synod.step.fanned_out":
      step.items = data.items;
      return `${data.items} items`;
    case "synod.step.item_started":
      step.state = "running";
      return `item ${data.item}, attempt ${data.attempt}`;
    case "synod.step.item_succeeded":
      step.itemsDone += 1;
      return `item ${data.item} in ${formatDuration(data.duration_ms)}`;
    case "synod.step.item_failed":
      if (data.retry_in_ms !== null && data.retry_in_ms !== undefined) step.retries += 1;
      return `item ${data.item}: ${(data.error || {}).message || "failed"}`;
    case "synod.step.reflected":
      // Rounds count from 0: round r judged means r + 1 rounds ran.
      step.rounds = Math.max(step.rounds, (data.round || 0) + 1);
      step.verdict = `${data.verdict} by ${data.critic}${data.stop ? " (" + data.stop + ")" : ""}`;
      if (data.verdict === "revise" && !data.stop) step.state = "reflecting";
      return `round ${data.round}: ${data.verdict} by ${data.critic}, confidence ${Number(data.confidence).toFixed(2)}${data.feedback ? " — " + data.feedback : ""}${data.stop ? " [" + data.stop + "]" : ""}`;
    case "synod.step.input_redacted": {
      const counts = Object.entries(data.redacted || {}).map(([kind, n]) => `${n} ${kind}`).join(", ");
      step.guarded = counts || "nothing";
      return `input for external expert ${data.expert} masked: ${step.guarded}`;
    }
    case "synod.binding.started":
      state.bindings.set(data.binding, { state: "running", detail: `${data.method} ${data.origin}` });
      return `${data.method} ${data.origin}`;
    case "synod.binding.attempt":
      return `attempt ${data.attempt}: ${data.status || data.error || ""}`;
    case "synod.binding.delivered":
      state.bindings.set(data.binding, { state: "delivered", detail: `HTTP ${data.status} after ${data.attempts} attempt(s)` });
      return `HTTP ${data.status}`;
    case "synod.binding.failed":
      state.bindings.set(data.binding, { state: "failed", detail: data.error });
      return data.error;
    case "synod.binding.skipped":
      state.bindings.set(data.binding, { state: "skipped", detail: data.reason });
      return data.reason;
    case "synod.approval.requested":
      state.approvals.set(data.binding, { roles: data.roles || [], timeout_ms: data.timeout_ms, time: event.time });
      state.bindings.set(data.binding, { state: "waiting", detail: "waiting for approval" });
      return `waiting for ${(data.roles || []).join(", ") || "an approver"}`;
    case "synod.approval.decided":
      state.approvals.delete(data.binding);
      state.bindings.set(data.binding, { state: data.approved ? "approved" : "rejected", detail: data.comment || "" });
      return `${data.approved ? "approved" : "rejected"}${data.comment ? ": " + data.comment : ""}`;
    case "synod.approval.timed_out":
      state.approvals.delete(data.binding);
      state.bindings.set(data.binding, { state: "timed_out", detail: `no decision in ${formatDuration(data.after_ms)}` });
      return "timed out";
    case "synod.run.succeeded":
      state.status = "succeeded";
      state.endedAt = event.time;
      return "run succeeded";
    case "synod.run.failed":
      state.status = "failed";
      state.endedAt = event.time;
      state.error = data.error;
      return data.error;
    case "synod.run.cancelled":
      state.status = "cancelled";
      state.endedAt = event.time;
      state.error = "cancelled: " + (data.reason || "");
      return data.reason;
    default:
      return "";
  }
}

// ---------- run page: DAG layout (layers by dependency depth) ----------

const NODE_W = 190;
const NODE_H = 62;
const GAP_X = 70;
const GAP_Y = 22;

function layout(state) {
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (id) => {
    if (depth.has(id)) return depth.get(id);
    const step = state.steps.get(id);
    if (!step || visiting.has(id)) return 0;
    visiting.add(id);
    let d = 0;
    for (const need of step.needs) if (state.steps.has(need)) d = Math.max(d, depthOf(need) + 1);
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const layers = [];
  for (const id of state.order) {
    const d = depthOf(id);
    (layers[d] = layers[d] || []).push(id);
  }
  // Order each layer by the mean row of its parents (one barycentre pass).
  const row = new Map();
  layers.forEach((layer, index) => {
    if (index > 0) {
      const score = (id) => {
        const needs = state.steps.get(id).needs.filter((n) => row.has(n));
        return needs.length ? needs.reduce((sum, n) => sum + row.get(n), 0) / needs.length : 0;
      };
      layer.sort((a, b) => score(a) - score(b));
    }
    layer.forEach((id, position) => row.set(id, position));
  });
  const tallest = Math.max(1, ...layers.map((layer) => layer.length));
  const height = tallest * NODE_H + (tallest - 1) * GAP_Y;
  const positions = new Map();
  layers.forEach((layer, column) => {
    const layerHeight = layer.length * NODE_H + (layer.length - 1) * GAP_Y;
    const top = (height - layerHeight) / 2;
    layer.forEach((id, position) => {
      positions.set(id, { x: column * (NODE_W + GAP_X), y: top + position * (NODE_H + GAP_Y) });
    });
  });
  const width = Math.max(1, layers.length) * (NODE_W + GAP_X) - GAP_X;
  return { positions, width, height };
}

function renderDag(state, selected, onSelect) {
  const root = $("dag");
  clear(root);
  const pad = 12;
  const { positions, width, height } = layout(state);
  root.setAttribute("viewBox", `${-pad} ${-pad} ${width + 2 * pad} ${height + 2 * pad}`);
  root.setAttribute("width", width + 2 * pad);
  root.setAttribute("height", height + 2 * pad);
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#4b5d75" }));
  defs.append(marker);
  root.append(defs);
  for (const id of state.order) {
    const step = state.steps.get(id);
    const to = positions.get(id);
    for (const need of step.needs) {
      const from = positions.get(need);
      if (!from) continue;
      const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x - 2, y2 = to.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      const done = state.steps.get(need).state === "succeeded";
      root.append(svg("path", {
        class: "edge" + (done ? " done" : ""), "data-from": need, "data-to": id,
        d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)",
      }));
    }
  }
  for (const id of state.order) {
    const step = state.steps.get(id);
    const { x, y } = positions.get(id);
    const group = svg("g", {
      class: "node" + (id === selected ? " selected" : ""), transform: `translate(${x} ${y})`,
      "data-step": id, "data-state": step.state, "data-attempts": step.attempts,
      "data-retries": step.retries, "data-rounds": step.rounds, tabindex: "0",
    });
    group.append(svg("title", {}, `${id} (${step.uses}): ${step.state}`));
    group.append(svg("rect", { class: "box", width: NODE_W, height: NODE_H, rx: 6 }));
    group.append(svg("rect", { class: "bar", width: 4, height: NODE_H - 12, x: 6, y: 6, rx: 2 }));
    group.append(svg("text", { x: 18, y: 20, "font-size": 13, "font-weight": 600 }, truncate(id, 22)));
    group.append(svg("text", { class: "uses", x: 18, y: 36 }, truncate(step.uses, 26)));
    group.append(svg("text", { class: "state", x: 18, y: 52 }, step.state.replace("_", " ")));
    const tags = [];
    if (step.attempts > 1) tags.push(`×${step.attempts}`);
    if (step.retries > 0) tags.push(`↻${step.retries}`);
    if (step.rounds > 0) tags.push(`⟲${step.rounds}`);
    if (step.items !== null) tags.push(`${step.itemsDone}/${step.items}`);
    if (step.duration_ms !== null && step.state === "succeeded") tags.push(formatDuration(step.duration_ms));
    group.append(svg("text", { class: "tag", x: NODE_W - 8, y: 52, "text-anchor": "end" }, tags.join("  ")));
    group.addEventListener("click", () => onSelect(id));
    group.addEventListener("keydown", (e) => { if (e.key === "Enter") onSelect(id); });
    root.append(group);
  }
}

function jsonBlock(value) {
  return el("pre", { class: "json", text: value === undefined ? "—" : JSON.stringify(value, null, 2) });
}

function renderStep(state, id) {
  const box = $("step-details");
  clear(box);
  const step = id && state.steps.get(id);
  $("step-title").textContent = step ? step.id : "";
  if (!step) {
    box.append(el("p", { class: "muted small", text: "No step selected." }));
    return;
  }
  const facts = el("dl", { class: "kv" });
  const fact = (key, value) => { facts.append(el("dt", { text: key }), el("dd", {}, value)); };
  fact("state", badge(step.state));
  fact("skill", el("span", { class: "mono", text: step.uses }));
  fact("needs", step.needs.length ? step.needs.join(", ") : "—");
  fact("attempts", String(step.attempts));
  fact("retries", String(step.retries));
  if (step.rounds) fact("reflection rounds", String(step.rounds));
  if (step.verdict) fact("last verdict", step.verdict);
  if (step.guarded) fact("masked for external expert", step.guarded);
  if (step.items !== null) fact("items", `${step.itemsDone}/${step.items}`);
  if (step.duration_ms !== null) fact("duration", formatDuration(step.duration_ms));
  if (step.confidence !== null) fact("confidence", Number(step.confidence).toFixed(2));
  if (step.instance) fact("instance", el("span", { class: "mono", text: step.instance }));
  if (step.error) fact("error", el("span", { class: "error-text", text: step.error }));
  box.append(el("div", {}, el("h3", { text: "Summary" }), facts));
  box.append(el("div", {}, el("h3", { text: "Input (redacted)" }), jsonBlock(step.input)));
  box.append(el("div", {}, el("h3", { text: "Output (redacted)" }), jsonBlock(step.output)));
}

function renderApprovals(state) {
  const box = $("approvals");
  clear(box);
  $("approvals-count").textContent = String(state.approvals.size);
  $("approvals-count").classList.toggle("hot", state.approvals.size > 0);
  if (!state.approvals.size) {
    box.append(el("p", { class: "muted small", text: "Nothing waiting for a decision." }));
    return;
  }
  for (const [binding, request] of state.approvals) {
    const comment = el("input", { type: "text", placeholder: "comment (optional)", "aria-label": "comment" });
    const message = el("div", { class: "small muted" });
    const decide = async (approve, buttons) => {
      for (const button of buttons) button.disabled = true;
      try {
        const response = await fetch(`/runs/${encodeURIComponent(state.id)}/approvals/${encodeURIComponent(binding)}`, {
          method: "POST", headers: authHeaders({ "content-type": "application/json" }),
          body: JSON.stringify({ approve, comment: comment.value }),
        });
        const body = await response.json().catch(() => ({}));
        message.textContent = response.ok ? (approve ? "approved" : "rejected") : (body.error || `HTTP ${response.status}`);
      } catch (error) {
        message.textContent = String(error);
      }
      for (const button of buttons) button.disabled = false;
    };
    const approve = el("button", { class: "approve", "data-binding": binding, text: "Approve" });
    const reject = el("button", { class: "reject", "data-binding": binding, text: "Reject" });
    approve.addEventListener("click", () => decide(true, [approve, reject]));
    reject.addEventListener("click", () => decide(false, [approve, reject]));
    const actions = canApprove()
      ? el("div", { class: "actions" }, approve, reject)
      : el("div", { class: "small muted", text: "deciding needs a token with the approver role" });
    if (!canApprove()) comment.hidden = true;
    const timeout = request.timeout_ms ? ` · times out after ${formatDuration(request.timeout_ms)}` : "";
    box.append(el("div", { class: "approval", "data-binding": binding },
      el("div", { class: "name", text: binding }),
      el("div", { class: "small muted", text: `roles: ${request.roles.join(", ") || "any"}${timeout}` }),
      comment, actions, message));
  }
}

function renderBindings(state) {
  const box = $("bindings");
  clear(box);
  if (!state.bindings.size) {
    box.append(el("p", { class: "muted small", text: "No bindings yet." }));
    return;
  }
  for (const [name, binding] of state.bindings) {
    box.append(el("div", { class: "binding-row", "data-binding": name, title: binding.detail || "" },
      el("span", { class: "mono", text: name }), badge(binding.state)));
  }
}

function renderHeader(state) {
  $("run-id").textContent = state.id;
  $("run-workflow").textContent = state.workflow || "run";
  const status = $("run-status");
  status.dataset.status = state.status;
  status.textContent = state.status;
  $("run-started").textContent = formatTime(state.createdAt);
  if (state.createdAt) {
    const end = state.endedAt ? Date.parse(state.endedAt) : Date.now();
    $("run-duration").textContent = formatDuration(end - Date.parse(state.createdAt));
  }
  const done = [...state.steps.values()].filter((s) => s.state === "succeeded").length;
  $("run-progress").textContent = `${done} / ${state.steps.size} succeeded`;
  $("run-revisions").textContent = String(state.revisions);
  $("run-events-count").textContent = String(state.events);
  const error = $("run-error");
  error.hidden = !state.error;
  error.textContent = state.error || "";
  const note = $("planner-note");
  note.hidden = !state.planner;
  if (state.planner) note.textContent = `Planned by the ${state.planner.planner} planner for goal “${state.planner.goal}”: ${state.planner.task}`;
}

function appendLog(event, summary) {
  const kind = event.type.split(".").pop();
  const row = el("tr", { class: "event", "data-seq": event.synodseq, "data-type": event.type, "data-kind": kind },
    el("td", { class: "num", text: event.synodseq }),
    el("td", { class: "mono", text: clockTime(event.time) }),
    el("td", { class: "type", text: event.type.replace(/^synod\./, "") }),
    el("td", { class: "mono", text: event.subject || (event.data && event.data.binding) || "" }),
    el("td", { class: "details", title: summary || "", text: summary || "" }));
  $("event-log-body").append(row);
  const wrap = $("event-log-body").closest(".log-wrap");
  wrap.scrollTop = wrap.scrollHeight;
}

function showRun(id) {
  const state = newRunState(id);
  let selected = null;
  clear($("event-log-body"));
  clear($("dag"));
  renderStep(state, null);
  const select = (stepId) => { selected = stepId; redraw(); };
  const redraw = () => {
    renderHeader(state);
    renderDag(state, selected, select);
    renderStep(state, selected);
    renderApprovals(state);
    renderBindings(state);
  };
  redraw();
  getJson("/runs/" + encodeURIComponent(id)).then((record) => {
    state.createdAt = record.created_at;
    if (!state.workflow) state.workflow = record.workflow;
    if (record.status !== "pending" || state.status === "pending") state.status = state.endedAt ? state.status : record.status;
    renderHeader(state);
  }).catch((error) => {
    state.error = error.message;
    renderHeader(state);
  });

  // Redraws at most once per animation frame however fast events arrive.
  let scheduled = false;
  const scheduleRedraw = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; redraw(); });
  };
  const token = apiToken();
  const source = new EventSource("/runs/" + encodeURIComponent(id) + "/events" +
    (token ? "?access_token=" + encodeURIComponent(token) : ""));
  setConnection("reconnecting");
  source.onopen = () => setConnection("live");
  source.onerror = () => setConnection(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  const onEvent = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch (error) { return; }
    if (event.synodseq <= state.lastSeq) return; // already applied (resume overlap)
    const summary = applyEvent(state, event);
    appendLog(event, summary);
    if (!selected && state.order.length) selected = state.order[0];
    if (["synod.run.succeeded", "synod.run.failed", "synod.run.cancelled"].includes(event.type)) {
      source.close(); // the stream ends after the terminal event
      setConnection("closed");
    }
    scheduleRedraw();
  };
  for (const type of EVENT_TYPES) source.addEventListener(type, onEvent);
  // A server-side stream error (e.g. a lagging subscriber) ends the stream;
  // EventSource reconnects with Last-Event-ID and the server resumes after it.
  source.addEventListener("error", (message) => {
    if (message.data) console.warn("event stream:", message.data);
  });
  const ticker = setInterval(() => { if (!state.endedAt) renderHeader(state); }, 1000);
  return () => { source.close(); clearInterval(ticker); };
}

// ---------- start ----------

function buildLegend() {
  const legend = $("legend");
  for (const [name, color] of STATES) {
    const item = el("span", { text: name.replace("_", " ") });
    item.style.setProperty("--c", `var(${color})`);
    legend.append(item);
  }
}

buildLegend();
setupTokenForm();
window.addEventListener("hashchange", route);
refreshWhoami().then(route);

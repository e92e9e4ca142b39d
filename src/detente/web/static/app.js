// The liaison officer's workspace: sign in with a party token, the map, the conflict
// inbox with its detail and hotline, and a form to declare an activity by drawing it.
import { Api, ApiError } from "/static/api.js";
import { AirspaceMap } from "/static/map.js";

const config = JSON.parse(document.getElementById("config").textContent);
const $ = (id) => document.getElementById(id);
const KEY = "detente-token";

let api = null;
let me = null;
let map = null;
let stopStream = null;
let conflicts = [];
let airspace = [];
let openConflict = null;
let refreshTimer = null;
const LIVE_EVERY_MS = 2000; // how often the live positions are fetched

// -- signing in and out -------------------------------------------------------------
$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  await signIn($("token").value.trim());
});
$("signout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  location.reload();
});

async function signIn(token) {
  $("signin-error").textContent = "";
  const candidate = new Api(token);
  try {
    me = await candidate.get("/me");
  } catch (e) {
    $("signin-error").textContent = e instanceof ApiError && e.status === 401
      ? "This token is unknown or revoked." : `Cannot sign in: ${e.message}`;
    return;
  }
  if (!me.party) {
    $("signin-error").textContent = "This is the admin token: sign in with a party's token.";
    return;
  }
  api = candidate;
  sessionStorage.setItem(KEY, token);
  $("signin").hidden = true;
  $("workspace").hidden = false;
  $("who").textContent = `Signed in as ${me.party}`;
  $("signout").hidden = false;
  map = new AirspaceMap($("map"), config.tile_url);
  // For the browser's console (and the browser test): the map, and the ids of the
  // latest events received.
  window.detente = { map, seen: [] };
  // Follow what happens from now on: the newest event's id is read before the state is
  // loaded, so nothing after it is missed, and the history is not replayed.
  const { id: newest } = await api.get("/events/newest");
  await refresh();
  stopStream = api.stream(newest, onEvent, (up) => { $("live").hidden = !up; });
  setInterval(refreshLive, LIVE_EVERY_MS); // (until sign-out, which reloads the page)
}

// -- keeping up to date ---------------------------------------------------------------
function onEvent(event) {
  const seen = window.detente.seen;
  seen.push(event.id);
  if (seen.length > 100) seen.shift();
  // Refresh once a burst has passed.
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 200);
}

// Live positions change by the second: fetched on their own, often, and cheaply.
async function refreshLive() {
  try {
    map.showLive((await api.get("/positions/latest")).features);
  } catch (e) {
    // (the stream's indicator already says when the server is away)
  }
}

async function refresh() {
  const [space, list, incidents, mine] = await Promise.all([
    api.get("/airspace"), api.get("/conflicts?status=live"), api.get("/incidents"),
    api.get("/activities")]);
  renderEditChoices(mine);
  airspace = space.features;
  const incidentFeatures = incidents.map((i) => ({
    type: "Feature", geometry: i.location,
    properties: { role: "incident", incident: i.id, description: i.description,
      time_start: i.occurred_at, time_end: i.occurred_at },
  }));
  map.show([...airspace, ...incidentFeatures]);
  await refreshLive();
  updateTimeRange();
  conflicts = list.sort(urgency);
  renderInbox();
  if (openConflict !== null) await showConflict(openConflict, false);
}

// Unacknowledged (by me) first, by deadline; then by when the conflict starts.
function urgency(a, b) {
  const pending = (c) => (c.status === "open" && !c.acknowledged_by.includes(me.party) ? 0 : 1);
  return pending(a) - pending(b) || (a.deadline || "~").localeCompare(b.deadline || "~")
    || (a.starts || "").localeCompare(b.starts || "") || a.id - b.id;
}

function renderInbox() {
  $("inbox-count").textContent = `(${conflicts.length})`;
  const ul = $("conflicts");
  ul.replaceChildren();
  if (!conflicts.length) {
    const li = document.createElement("li");
    li.textContent = "No live conflicts.";
    ul.append(li);
  }
  for (const c of conflicts) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = `conflict status-${c.status}` + (c.id === openConflict ? " selected" : "");
    b.dataset.conflict = c.id;
    const acked = c.acknowledged_by.includes(me.party);
    b.innerHTML = "";
    b.append(
      line(`#${c.id} ${c.activity} × ${c.counterpart_party}`, "title"),
      line(`${c.status}${acked ? "" : " · to acknowledge"} · closest ${Math.round(c.min_horizontal_m)} m`),
      line(`starts ${fmt(c.starts)}${c.deadline ? ` · deadline ${fmt(c.deadline)}` : ""}`),
    );
    b.addEventListener("click", () => showConflict(c.id, true));
    li.append(b);
    ul.append(li);
  }
}

function line(text, cls) {
  const s = document.createElement("span");
  s.textContent = text;
  s.className = cls || "";
  return s;
}

const fmt = (t) => (t ? t.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "Z") : "—");

// -- one conflict -------------------------------------------------------------------------
async function showConflict(id, focus) {
  openConflict = id;
  $("detail-error").textContent = "";
  let c;
  let messages;
  try {
    [c, messages] = await Promise.all([api.get(`/conflicts/${id}`),
      api.get(`/conflicts/${id}/messages`)]);
  } catch (e) {
    $("detail-error").textContent = e.message;
    return;
  }
  $("detail").hidden = false;
  $("detail-title").textContent = `Conflict #${c.id}: ${c.activity} × ${c.counterpart.party}`;
  const facts = {
    Status: c.status, "Their activity": c.counterpart.kind || "—",
    "Their contact": c.counterpart.contact || "—", Starts: fmt(c.starts),
    "Acknowledge by": fmt(c.deadline),
    "Acknowledged by": c.acknowledged_by.join(", ") || "nobody yet",
    "Accepted by": c.accepted_by.join(", ") || "nobody yet",
  };
  $("facts").replaceChildren(...Object.entries(facts).flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
  $("gaps").tBodies[0].replaceChildren(...c.pairs.map((p) => {
    const tr = document.createElement("tr");
    for (const v of [p.own_volume, `${c.counterpart.party} #${p.their_volume + 1}`,
      `${Math.round(p.horizontal_m)} m`, `${Math.round(p.vertical_m)} m`,
      `${Math.round(p.time_s)} s`]) {
      const td = document.createElement("td"); td.textContent = v; tr.append(td);
    }
    return tr;
  }));
  $("ack").disabled = c.status !== "open" || c.acknowledged_by.includes(me.party);
  $("accept").disabled = c.accepted_by.includes(me.party) || !["open", "acknowledged"].includes(c.status);
  const mine = new Set(c.pairs.map((p) => String(p.own_volume)));
  const own = airspace.filter((f) => f.properties.role === "own-activity"
    && f.properties.activity === c.activity && mine.has(String(f.properties.id)));
  if (focus) {
    map.highlightVolumes([...own.map((f) => ({ geometry: f.geometry, radius_m: f.properties.radius_m })),
      ...c.counterpart.volumes]);
  }
  renderMessages(messages);
  renderInbox();
  if (focus) { // bring the detail into view, and keyboard focus with it
    $("detail-title").focus({ preventScroll: true });
    $("detail").scrollIntoView({ block: "start", behavior: "smooth" });
  }
  const unread = messages.filter((m) => m.sender !== me.party && m.receipts[me.party]
    && !m.receipts[me.party].read_at).map((m) => m.id);
  if (unread.length) await api.post(`/conflicts/${id}/messages/read`, { messages: unread });
}

function renderMessages(messages) {
  $("messages").replaceChildren(...messages.map((m) => {
    const li = document.createElement("li");
    li.className = m.sender === me.party ? "mine" : "theirs";
    const who = document.createElement("strong");
    who.textContent = m.sender === me.party ? "You" : m.sender;
    const when = document.createElement("time");
    when.textContent = fmt(m.created_at);
    const body = document.createElement("p");
    body.textContent = m.body + (m.corrects ? ` (corrects message ${m.corrects})` : "");
    li.append(who, " ", when, body);
    return li;
  }));
}

for (const [button, action] of [["ack", "acknowledge"], ["accept", "accept"]]) {
  $(button).addEventListener("click", async () => {
    try {
      await api.post(`/conflicts/${openConflict}/${action}`);
    } catch (e) {
      $("detail-error").textContent = e.message;
    }
    await refresh();
  });
}

$("send-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = $("message").value.trim();
  if (!body) return;
  try {
    await api.post(`/conflicts/${openConflict}/messages`, { body });
    $("message").value = "";
  } catch (err) {
    $("detail-error").textContent = err.message;
  }
  await showConflict(openConflict, false);
});

// -- filters ----------------------------------------------------------------------------
let timeRange = null;

function updateTimeRange() {
  const times = airspace.flatMap((f) => [f.properties.time_start, f.properties.time_end])
    .filter(Boolean).map(Date.parse);
  timeRange = times.length ? [Math.min(...times), Math.max(...times)] : null;
  applyFilters();
}

function applyFilters() {
  const slider = $("time");
  slider.disabled = $("all-times").checked || !timeRange;
  let time = null;
  if (!slider.disabled) {
    time = timeRange[0] + (timeRange[1] - timeRange[0]) * (slider.value / 1000);
    $("time-label").textContent = fmt(new Date(time).toISOString());
  } else {
    $("time-label").textContent = "any time";
  }
  const num = (id) => ($(id).value === "" ? null : Number($(id).value));
  map.filter = { time, altMin: num("alt-min"), altMax: num("alt-max") };
  map.render();
}

for (const id of ["time", "all-times", "alt-min", "alt-max"]) {
  $(id).addEventListener("input", () => map && applyFilters());
}
for (const name of ["own", "zones", "counterparts", "incidents", "live"]) {
  $(`layer-${name}`).addEventListener("change", (e) => map.setLayerVisible(name, e.target.checked));
}

// -- declaring and changing an activity ----------------------------------------------
let mode = null; // "polygon" | "circle"
let editing = null; // {id, version} of the activity being changed

function renderEditChoices(mine) {
  const select = $("edit-select");
  const chosen = select.value;
  select.replaceChildren(new Option("(a new activity)", ""),
    ...mine.map((a) => new Option(`${a.id} (${a.state})`, a.id)));
  select.value = mine.some((a) => a.id === chosen) ? chosen : "";
}

$("edit-select").addEventListener("change", async (e) => {
  clearErrors();
  const id = e.target.value;
  if (!id) { resetForm(); return; }
  const a = await api.get(`/activities/${encodeURIComponent(id)}`);
  if (a.volumes.length !== 1) {
    $("form-error").textContent = `${id} has ${a.volumes.length} volumes: the map changes `
      + "activities of one volume; use the API or the command line for this one.";
    return;
  }
  const v = a.volumes[0];
  editing = { id: a.id, version: a.version };
  $("f-id").value = a.id;
  $("f-id").readOnly = true;
  $("f-kind").value = a.kind || "";
  mode = v.geometry.type === "Point" ? "circle" : "polygon";
  const corners = mode === "circle" ? [v.geometry.coordinates]
    : v.geometry.coordinates[0].slice(0, -1);
  $("f-coords").value = corners.map(([x, y]) => `${x}, ${y}`).join("\n");
  if (v.radius_m) $("f-radius").value = v.radius_m;
  $("f-alt-lo").value = v.alt_lower_m;
  $("f-alt-hi").value = v.alt_upper_m;
  $("f-start").value = v.time_start.slice(0, 16);
  $("f-end").value = v.time_end.slice(0, 16);
  $("declare").textContent = "Save changes";
  $("cancel-activity").hidden = false;
  sketch();
});

function resetForm() {
  editing = null;
  mode = null;
  $("activity-form").reset();
  $("f-id").readOnly = false;
  $("edit-select").value = "";
  $("declare").textContent = "Declare";
  $("cancel-activity").hidden = true;
  if (map) map.showSketch([], null);
}

$("cancel-activity").addEventListener("click", async () => {
  if (!editing) return;
  const id = editing.id;
  try {
    await api.delete(`/activities/${encodeURIComponent(id)}`);
    resetForm();
    $("form-result").textContent = `Cancelled ${id}: its conflicts are resolved.`;
  } catch (err) {
    $("form-error").textContent = err.message;
  }
  await refresh();
});

function points() {
  return $("f-coords").value.split("\n").map((l) => l.trim()).filter(Boolean)
    .map((l) => l.split(/[,\s]+/).map(Number));
}

function sketch() {
  if (!map) return;
  const pts = points().filter((p) => p.length === 2 && p.every(Number.isFinite));
  map.showSketch(pts, mode === "circle" ? Number($("f-radius").value) || 0 : null);
}

function draw(kind) {
  mode = kind;
  $("f-coords").value = "";
  $("finish").hidden = kind !== "polygon";
  $("draw-hint").textContent = kind === "polygon"
    ? "Click the map at each corner, then press “Finish the polygon”."
    : "Click the map at the centre; set the radius below.";
  map.startDrawing((lon, lat) => {
    const text = `${lon.toFixed(5)}, ${lat.toFixed(5)}`;
    $("f-coords").value = kind === "circle" ? text : `${$("f-coords").value}${text}\n`;
    if (kind === "circle") map.stopDrawing();
    sketch();
  });
  sketch();
}

$("draw-polygon").addEventListener("click", () => draw("polygon"));
$("draw-circle").addEventListener("click", () => draw("circle"));
$("finish").addEventListener("click", () => {
  map.stopDrawing();
  $("finish").hidden = true;
  $("draw-hint").textContent = "Shape done: fill in the rest and declare it.";
});
$("f-coords").addEventListener("input", sketch);
$("f-radius").addEventListener("input", sketch);

function geometry() {
  const pts = points();
  if (pts.some((p) => p.length !== 2 || !p.every(Number.isFinite))) {
    throw fieldError("geometry", "each line must be 'longitude, latitude'");
  }
  const circle = mode === "circle" || pts.length === 1;
  if (circle) {
    if (pts.length !== 1) throw fieldError("geometry", "a circle has one centre");
    return { geometry: { type: "Point", coordinates: pts[0] }, radius_m: Number($("f-radius").value) };
  }
  if (pts.length < 3) throw fieldError("geometry", "a polygon needs at least 3 corners");
  return { geometry: { type: "Polygon", coordinates: [[...pts, pts[0]]] } };
}

class FieldError extends Error {
  constructor(field, reason) { super(reason); this.field = field; }
}
const fieldError = (field, reason) => new FieldError(field, reason);

function showFieldErrors(errors) {
  let shown = false;
  for (const { field, reason } of errors) {
    const name = String(field || "").split(/[./[\]]+/).filter((x) => x && Number.isNaN(Number(x)))
      .pop();
    const slot = $(`err-${name === "coordinates" || name === "type" ? "geometry" : name}`);
    if (slot) {
      slot.textContent = reason;
      slot.previousElementSibling?.setAttribute("aria-invalid", "true");
      shown = true;
    }
  }
  return shown;
}

function clearErrors() {
  for (const el of document.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of document.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  $("form-error").textContent = "";
  $("form-result").textContent = "";
}

$("activity-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  clearErrors();
  const utc = (v) => (v ? `${v.length === 16 ? `${v}:00` : v}Z` : "");
  let body;
  try {
    body = {
      id: $("f-id").value.trim(),
      kind: $("f-kind").value.trim() || null,
      volumes: [{
        id: "1",
        ...geometry(),
        alt_lower_m: Number($("f-alt-lo").value), alt_upper_m: Number($("f-alt-hi").value),
        time_start: utc($("f-start").value), time_end: utc($("f-end").value),
      }],
    };
  } catch (err) {
    if (err instanceof FieldError) showFieldErrors([err]);
    return;
  }
  try {
    const made = editing
      ? await api.put(`/activities/${encodeURIComponent(editing.id)}`, body, editing.version)
      : await api.post("/activities", body);
    const n = made.conflicts.length;
    const verb = editing ? "Saved" : "Declared";
    resetForm();
    $("form-result").textContent = `${verb} ${body.id}: ${n} conflict${n === 1 ? "" : "s"}.`;
    await refresh();
  } catch (err) {
    const p = err.problem || {};
    const errors = p.errors || (p.field ? [{ field: p.field, reason: p.detail }] : []);
    if (!showFieldErrors(errors)) $("form-error").textContent = err.message;
  }
});

// -- start ----------------------------------------------------------------------------------
const saved = sessionStorage.getItem(KEY);
if (saved) signIn(saved);

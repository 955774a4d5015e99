// The search page: a query box and filters over /api/search, "more like this" over /api/similar.
"use strict";

const form = document.querySelector("form.query");
const results = document.getElementById("results");
const summary = document.getElementById("summary");
const notice = document.getElementById("notice");
const play = makePlayer(document.getElementById("player"));
const actions = {play, similar};

function showError(message) {
  notice.textContent = message;
  notice.className = "notice error";
  notice.hidden = false;
}

function filterParams() {
  const params = new URLSearchParams();
  for (const name of ["k", "path", "min_duration", "max_duration"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

async function fetchHits(url) {
  const response = await fetch(url);
  const body = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

async function show(url, heading) {
  summary.textContent = "Searching…";
  try {
    const body = await fetchHits(url);
    notice.hidden = true;
    const capped = body.capped ? ` (capped at ${body.k})` : "";
    summary.textContent = `${heading}: ${body.hits.length} result${body.hits.length === 1 ? "" : "s"}${capped}`;
    renderHits(results, body.hits, actions, "No video matches this query (with these filters).");
  } catch (error) {
    summary.textContent = "";
    results.replaceChildren();
    showError(error.message);
  }
}

function search(event) {
  if (event) event.preventDefault();
  const q = form.elements.q.value.trim();
  if (!q) return;
  const params = filterParams();
  params.set("q", q);
  history.replaceState(null, "", "?" + params);
  show("/api/search?" + params, `“${q}”`);
}

function similar(hit) {
  const params = filterParams();
  params.set("id", hit.id);
  const window = isWindow(hit) ? ` ${formatTime(hit.start)}–${formatTime(hit.end)}` : "";
  show("/api/similar?" + params, `More like ${baseName(hit.path)}${window}`);
}

async function loadStatus() {
  const about = document.getElementById("about");
  try {
    const status = await fetchHits("/api/status");
    about.textContent = `${status.operator} · collection ${status.collection}` + (status.ok ? ` · ${status.rows} rows` : "");
    if (!status.ok) showError(status.error);
  } catch (error) {
    showError(error.message);
  }
}

form.addEventListener("submit", search);
const initial = new URLSearchParams(location.search);
for (const [name, value] of initial) if (form.elements[name]) form.elements[name].value = value;
loadStatus().then(() => { if (initial.get("q")) search(); });

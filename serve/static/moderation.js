// camid moderators' page: vanilla JS, no dependencies. Every request carries the moderator token.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("camid-token") || "", items: [], index: 0, total: 0,
  chosen: null, current: null, urls: [] };
const PAGE = 30;

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.token}` };
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 || response.status === 403) {
    logout(response.status === 403 ? "This token was revoked." : "Unknown token.");
    throw new Error("unauthorized");
  }
  return response;
}

async function login(token) {
  state.token = token.trim();
  const response = await fetch("/v1/moderators/me", { headers: { Authorization: `Bearer ${state.token}` } });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    $("login-error").textContent = (body.error && body.error.message) || "Login failed.";
    state.token = "";
    return;
  }
  sessionStorage.setItem("camid-token", state.token);
  $("who").textContent = `(${(await response.json()).name})`;
  $("login").hidden = true;
  $("app").hidden = false;
  $("exports").hidden = false;
  await loadQueue();
}

function logout(message = "") {
  sessionStorage.removeItem("camid-token");
  state.token = "";
  $("login").hidden = false;
  $("app").hidden = true;
  $("exports").hidden = true;
  $("login-error").textContent = message;
}

function filters() {
  const params = new URLSearchParams({ order: "uncertainty", limit: PAGE });
  for (const [key, id] of [["status", "f-status"], ["decision", "f-decision"], ["label", "f-label"]]) {
    if ($(id).value) params.set(key, $(id).value);
  }
  return params;
}

async function loadQueue(append = false) {
  const params = filters();
  params.set("offset", append ? state.items.length : 0);
  const page = await (await api(`/v1/submissions?${params}`)).json();
  state.items = append ? state.items.concat(page.items) : page.items;
  state.total = page.total;
  if (!append) state.index = 0;
  const c = page.counts;
  $("counts").textContent = `${c.pending} pending · ${c.verified} verified · ${c.rejected} rejected`;
  renderQueue();
  await show(state.index);
}

function pct(x) { return `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`; }

function renderQueue() {
  const list = $("queue");
  list.replaceChildren();
  state.items.forEach((item, i) => {
    const li = document.createElement("li");
    li.className = `item ${item.result.decision}` + (i === state.index ? " active" : "") + (item.done ? " done" : "");
    li.dataset.index = i;
    li.innerHTML = `<span class="chip ${item.result.decision}"></span><span class="name"></span><span class="conf"></span>`;
    li.children[0].textContent = item.result.decision;
    const status = item.status && item.status !== "pending" ? `${item.status} · ` : "";
    li.children[1].textContent = status + labelName(item.label);
    li.title = `${item.id}: ${item.label}`;
    li.children[2].textContent = pct(item.result.confidence);
    li.addEventListener("click", () => show(i));
    list.appendChild(li);
  });
  $("more").hidden = state.items.length >= state.total;
}

async function blobUrl(path) {
  const response = await api(path);
  if (!response.ok) return "";
  const url = URL.createObjectURL(await response.blob());
  state.urls.push(url);
  return url;
}

async function show(index) {
  state.urls.forEach((u) => URL.revokeObjectURL(u));
  state.urls = [];
  const item = state.items[index];
  $("empty").hidden = Boolean(item);
  $("card").hidden = !item;
  if (!item) return;
  state.index = index;
  renderQueue();
  const sub = await (await api(`/v1/submissions/${item.id}`)).json();
  state.current = sub;
  const r = sub.result;
  $("d-decision").textContent = r.decision;
  $("d-decision").className = `chip ${r.decision}`;
  $("d-label").textContent = labelName(r.label);
  $("d-confidence").textContent = pct(r.confidence);
  $("d-status").textContent = sub.status + (sub.final_label ? `: ${labelName(sub.final_label)}` : "");
  $("d-id").textContent = sub.id;
  $("d-time").textContent = new Date(sub.created_at).toLocaleString();
  $("d-rev").textContent = sub.revision;
  $("d-note").textContent = sub.note ? `“${sub.note}”` : "";
  renderBars(r.probabilities);
  renderLocation(r.location);
  renderDuplicates(sub);
  renderTrail(sub.reviews);
  choose(sub.final_label || r.label);
  $("review-note").value = "";
  $("review-msg").textContent = "";
  $("heatmap").hidden = true;
  $("heatmap").removeAttribute("src");
  $("toggle-heatmap").setAttribute("aria-pressed", "false");
  $("photo").src = await blobUrl(sub.photo_url);
}

function labelName(name) {
  const button = document.querySelector(`[data-label="${name}"]`);
  return button ? button.textContent.replace(/^\s*\d+\s*/, "").trim() : name;
}

function renderBars(probabilities) {
  const list = $("bars");
  list.replaceChildren();
  for (const p of probabilities) {
    const li = document.createElement("li");
    li.innerHTML = `<span class="bar-label"></span><span class="bar"><span></span></span><span class="bar-value"></span>`;
    li.children[0].textContent = labelName(p.label);
    li.children[1].firstChild.style.width = pct(p.score);
    li.children[2].textContent = pct(p.score);
    list.appendChild(li);
  }
}

function renderLocation(location) {
  const p = $("d-location");
  p.replaceChildren();
  if (!location) { p.textContent = "No location."; return; }
  const lat = location.lat.toFixed(6), lon = location.lon.toFixed(6);
  const a = document.createElement("a");
  a.href = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=19/${lat}/${lon}`;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.textContent = `${lat}, ${lon}`;
  p.append("Location: ", a, ` (${location.source === "exif" ? "from the photo's GPS" : "given by the sender"})`);
}

function renderDuplicates(sub) {
  const parts = [];
  if (sub.duplicate_of) parts.push(`repeats ${sub.duplicate_of}`);
  if (sub.duplicates && sub.duplicates.length) parts.push(`repeated by ${sub.duplicates.join(", ")}`);
  $("d-dups").textContent = parts.length ? `Duplicates: ${parts.join("; ")}` : "";
}

function renderTrail(reviews) {
  const list = $("trail");
  list.replaceChildren();
  for (const r of reviews || []) {
    const li = document.createElement("li");
    li.textContent = `rev ${r.revision}: ${r.moderator} ${r.verdict}` + (r.label ? ` ${r.label}` : "") +
      ` (${new Date(r.created_at).toLocaleString()})` + (r.note ? ` — ${r.note}` : "");
    list.appendChild(li);
  }
  document.querySelector(".trail").hidden = !(reviews && reviews.length);
}

function choose(label) {
  state.chosen = label;
  for (const b of document.querySelectorAll("[data-label]")) {
    b.setAttribute("aria-checked", String(b.dataset.label === label));
  }
  const model = state.current && state.current.result.label;
  $("confirm").firstChild.textContent = label === model ? "Confirm " : "Correct to this label ";
}

async function review(verdict) {
  const sub = state.current;
  if (!sub) return;
  if (verdict !== "reject") verdict = state.chosen === sub.result.label ? "confirm" : "correct";
  const body = { verdict, label: verdict === "reject" ? null : state.chosen,
    note: $("review-note").value, revision: sub.revision };
  const response = await api(`/v1/submissions/${sub.id}/review`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const answer = await response.json();
  if (response.status === 409) {
    $("review-msg").textContent = "Someone reviewed this meanwhile; showing the current state.";
    state.items[state.index] = { ...state.items[state.index], ...answer.current };
    await show(state.index);
    return;
  }
  if (!response.ok) { $("review-msg").textContent = answer.error.message; return; }
  state.items[state.index] = { ...state.items[state.index], ...answer, done: verdict };
  $("review-msg").textContent = `${verdict}ed`;
  const c = $("counts").textContent;
  if (c) refreshCounts();
  if (state.index + 1 < state.items.length) await show(state.index + 1); else renderQueue();
}

async function refreshCounts() {
  const page = await (await api("/v1/submissions?limit=1")).json();
  const c = page.counts;
  $("counts").textContent = `${c.pending} pending · ${c.verified} verified · ${c.rejected} rejected`;
}

async function toggleHeatmap() {
  const heat = $("heatmap");
  if (heat.hidden && !heat.getAttribute("src")) heat.src = await blobUrl(state.current.heatmap_url);
  heat.hidden = !heat.hidden;
  $("toggle-heatmap").setAttribute("aria-pressed", String(!heat.hidden));
}

async function download(path, name) {
  const response = await api(path);
  if (!response.ok) { alert(`Export failed (${response.status})`); return; }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await response.blob());
  a.download = name;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function onKey(event) {
  if ($("app").hidden || event.target.matches("input, select, textarea")) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const labels = [...document.querySelectorAll("[data-label]")];
  const key = event.key.toLowerCase();
  if (/^[1-9]$/.test(key) && labels[Number(key) - 1]) choose(labels[Number(key) - 1].dataset.label);
  else if (key === "enter") review("confirm");
  else if (key === "x") review("reject");
  else if (key === "j") show(Math.min(state.index + 1, state.items.length - 1));
  else if (key === "k") show(Math.max(state.index - 1, 0));
  else if (key === "h") toggleHeatmap();
  else return;
  event.preventDefault();
}

$("login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("token").value); });
$("logout").addEventListener("click", () => logout());
$("review").addEventListener("submit", (e) => { e.preventDefault(); review("confirm"); });
$("reject").addEventListener("click", () => review("reject"));
$("next").addEventListener("click", () => show(Math.min(state.index + 1, state.items.length - 1)));
$("prev").addEventListener("click", () => show(Math.max(state.index - 1, 0)));
$("toggle-heatmap").addEventListener("click", toggleHeatmap);
$("more").addEventListener("click", () => loadQueue(true));
for (const id of ["f-status", "f-decision", "f-label"]) $(id).addEventListener("change", () => loadQueue());
for (const b of document.querySelectorAll("[data-label]")) b.addEventListener("click", () => choose(b.dataset.label));
for (const b of document.querySelectorAll("[data-export]")) {
  b.addEventListener("click", () => download(b.dataset.export, b.dataset.name));
}
document.addEventListener("keydown", onKey);
if (state.token) login(state.token);

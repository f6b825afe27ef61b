// camid moderators' page: vanilla JS, no dependencies. Every request carries the moderator token.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("camid-token") || "", items: [], index: 0, total: 0,
  chosen: null, current: null, urls: [], classes: [], me: "", nextCursor: null, claimed: null, queueAsked: 0,
  // the boxes being reviewed, in pixels of the upright original photo (size: its width and height)
  boxes: [], selected: -1, drag: null, size: { w: 1, h: 1 }, photoReady: false };
const PAGE = 30;
const DRAG_PX = 5; // screen pixels a press must move before it draws or moves a box
const MIN_BOX = 2; // photo pixels: the smallest box side (the server needs at least 1)
const COLOURS = ["#facc15", "#22d3ee", "#f472b6", "#a3e635", "#fb923c", "#c084fc"];

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
  state.me = (await response.json()).name;
  $("who").textContent = `(${state.me})`;
  $("login").hidden = true;
  $("app").hidden = false;
  $("exports").hidden = false;
  await loadClasses();
  await loadQueue();
}

async function loadClasses() {
  // The loaded model's classes (names, display names, which are cameras); the buttons as a fallback.
  const response = await fetch("/v1/model").catch(() => null);
  const model = response && response.ok ? await response.json() : { classes: [] };
  state.classes = model.classes.map((c) => ({ name: c.name, display: c.display_name, camera: c.form_factor !== "none" }));
  if (!state.classes.length) {
    state.classes = [...document.querySelectorAll("[data-label]")].map((b) => (
      { name: b.dataset.label, display: b.textContent.replace(/^\s*\d+\s*/, "").trim(), camera: true }));
  }
}

function camerasText(n) { return n === 0 ? "no boxes" : n === 1 ? "1 camera" : `${n} cameras`; }

function logout(message = "") {
  sessionStorage.removeItem("camid-token");
  state.token = "";
  $("login").hidden = false;
  $("app").hidden = true;
  $("exports").hidden = true;
  $("login-error").textContent = message;
}

function filters() {
  // unclaimed: items other moderators have open stay out of this one's queue
  const params = new URLSearchParams({ order: "uncertainty", limit: PAGE, unclaimed: "true" });
  for (const [key, id] of [["status", "f-status"], ["decision", "f-decision"], ["label", "f-label"]]) {
    if ($(id).value) params.set(key, $(id).value);
  }
  return params;
}

async function loadQueue(append = false) {
  // "Load more" resumes after the last item shown (a cursor, not an offset): items that others
  // reviewed meanwhile leave the list without pushing unseen ones past the page boundary.
  const params = filters();
  if (append && state.nextCursor) params.set("cursor", state.nextCursor);
  const asked = ++state.queueAsked;
  const page = await (await api(`/v1/submissions?${params}`)).json();
  if (asked !== state.queueAsked) return; // a filter changed meanwhile: the later answer wins
  const seen = new Set(state.items.map((i) => i.id));
  state.items = append ? state.items.concat(page.items.filter((i) => !seen.has(i.id))) : page.items;
  state.total = page.total;
  state.nextCursor = page.next_cursor;
  if (!append) state.index = 0;
  showCounts(page.counts);
  renderQueue();
  if (!append) await show(state.index);
}

function showCounts(c) {
  const second = c.awaiting_second ? ` · ${c.awaiting_second} awaiting a second check` : "";
  $("counts").textContent = `${c.pending} pending${second} · ${c.verified} verified · ${c.rejected} rejected`;
}

function pct(x) { return `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`; }

function renderQueue() {
  const list = $("queue");
  list.replaceChildren();
  state.items.forEach((item, i) => {
    const li = document.createElement("li");
    li.className = `item ${item.result.decision}` + (i === state.index ? " active" : "") + (item.done ? " done" : "");
    li.dataset.index = i;
    li.innerHTML = `<span class="chip ${item.result.decision}"></span><span class="name"></span><span class="conf"></span>` +
      `<span class="cams"></span>`;
    li.children[0].textContent = item.result.decision;
    const status = item.status && item.status !== "pending" ? `${item.status} · ` : "";
    li.children[1].textContent = status + labelName(item.label);
    li.title = `${item.id}: ${item.label}`;
    li.children[2].textContent = pct(item.result.confidence);
    li.children[3].textContent = camerasText(item.camera_count);
    li.addEventListener("click", () => show(i));
    list.appendChild(li);
  });
  $("more").hidden = !state.nextCursor;
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
  await claim(sub);
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
  renderProvenance(sub);
  renderVerdicts(sub); // its own request; shown when it answers, if this item is still open
  renderTrail(sub.reviews);
  choose(sub.final_label || r.label);
  $("review-note").value = "";
  $("review-msg").textContent = "";
  $("heatmap").hidden = true;
  $("heatmap").removeAttribute("src");
  $("delete-reason").value = "";
  $("delete-zone").open = false;
  $("toggle-heatmap").setAttribute("aria-pressed", "false");
  loadBoxes(sub);
  $("photo").src = await blobUrl(sub.photo_url);
}

async function claim(sub) {
  // Open items are claimed (a lease the server lets run out): another moderator's claim is shown,
  // and the previous item this page claimed goes back to the queue.
  const previous = state.claimed;
  state.claimed = null;
  if (previous && previous !== sub.id) api(`/v1/submissions/${previous}/claim`, { method: "DELETE" }).catch(() => {});
  $("claim-msg").textContent = "";
  if (sub.status === "rejected" || sub.status === "verified") return;
  const response = await api(`/v1/submissions/${sub.id}/claim`, { method: "POST" });
  if (response.ok) { state.claimed = sub.id; return; }
  const body = await response.json().catch(() => ({}));
  $("claim-msg").textContent = (body.error && body.error.message) || "Could not claim this item.";
}

function labelName(name) {
  const known = state.classes.find((c) => c.name === name);
  if (known) return known.display;
  const button = document.querySelector(`[data-label="${name}"]`);
  return button ? button.textContent.replace(/^\s*\d+\s*/, "").trim() : name;
}

// -- boxes: drawn over the photo in percent of the original photo's size, so they follow any resize --

function loadBoxes(sub) {
  // The verified boxes once a review set them, else the model's cameras (older results have none).
  state.size = { w: sub.width, h: sub.height };
  const verified = Array.isArray(sub.boxes);
  state.boxes = (verified ? sub.boxes : sub.result.cameras || []).map((b) => (
    { box: [...b.box], label: b.label, confidence: verified ? null : b.confidence, drawn: false }));
  state.selected = state.boxes.length === 1 ? 0 : -1; // one camera: the number keys label it
  state.drag = null;
  state.photoReady = false;
  $("boxes").hidden = true; // until the new photo is loaded and laid out
  renderBoxes();
}

function placeBoxes() {
  // Lay the box layer exactly over the picture as displayed (scaled, centred, any aspect ratio).
  const img = $("photo");
  if (!state.photoReady || !img.naturalWidth || $("card").hidden) return;
  const frame = img.parentElement, outer = frame.getBoundingClientRect(), r = img.getBoundingClientRect();
  const ratio = img.naturalWidth / img.naturalHeight;
  let w = r.width, h = r.height; // fractional pixels: offsetWidth would round them
  if (w / h > ratio) w = h * ratio; else h = w / ratio; // object-fit: contain letterboxes inside the element
  const left = `${r.left - outer.left - frame.clientLeft + (r.width - w) / 2}px`;
  const top = `${r.top - outer.top - frame.clientTop + (r.height - h) / 2}px`;
  for (const layer of [$("boxes"), $("heatmap")]) { // the heatmap has the photo's aspect ratio
    Object.assign(layer.style, { left, top, width: `${w}px`, height: `${h}px` });
  }
  $("boxes").hidden = false;
}

function boxCaption(b, i) {
  return `${i + 1} ${labelName(b.label)}` + (b.confidence == null ? "" : ` ${pct(b.confidence)}`);
}

function renderBoxes() {
  const layer = $("boxes");
  layer.replaceChildren();
  const { w, h } = state.size;
  state.boxes.forEach((b, i) => {
    const [x0, y0, x1, y1] = b.box;
    const div = document.createElement("div");
    div.className = "box" + (i === state.selected ? " selected" : "");
    div.dataset.index = i;
    div.style.cssText = `left:${(100 * x0) / w}%;top:${(100 * y0) / h}%;` +
      `width:${(100 * (x1 - x0)) / w}%;height:${(100 * (y1 - y0)) / h}%;--c:${COLOURS[i % COLOURS.length]}`;
    const tag = document.createElement("span");
    tag.className = "tag" + (y0 / h < 0.06 ? " inside" : "") + (x0 / w > 0.6 ? " end" : ""); // stay in view
    tag.textContent = boxCaption(b, i);
    div.append(tag);
    for (const corner of ["nw", "ne", "sw", "se"]) {
      const handle = document.createElement("span");
      handle.className = `handle ${corner}`;
      handle.dataset.corner = corner;
      div.append(handle);
    }
    layer.append(div);
  });
  renderBoxList();
}

function renderBoxList() {
  const list = $("box-list");
  list.replaceChildren();
  const n = state.boxes.length;
  $("box-count").textContent = `${n ? camerasText(n) : "No camera boxes"}.`;
  state.boxes.forEach((b, i) => {
    const li = document.createElement("li");
    li.className = i === state.selected ? "selected" : "";
    li.style.setProperty("--c", COLOURS[i % COLOURS.length]);
    const number = document.createElement("button");
    number.type = "button";
    number.className = "swatch";
    number.textContent = i + 1;
    number.title = "select this box";
    number.addEventListener("click", () => selectBox(i));
    const select = document.createElement("select");
    select.setAttribute("aria-label", `label of box ${i + 1}`);
    const names = state.classes.map((c) => c.name);
    for (const name of names.includes(b.label) ? names : [b.label, ...names]) select.add(new Option(labelName(name), name));
    select.value = b.label;
    select.addEventListener("change", () => setBoxLabel(i, select.value));
    const source = document.createElement("span");
    source.className = "source";
    source.textContent = b.confidence != null ? `model ${pct(b.confidence)}` : b.drawn ? "drawn" : "";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `remove box ${i + 1}`);
    remove.addEventListener("click", () => removeBox(i));
    li.append(number, select, source, remove);
    list.append(li);
  });
}

function selectBox(i) { state.selected = i; renderBoxes(); }

function setBoxLabel(i, label) {
  const b = state.boxes[i];
  if (b.label !== label) Object.assign(b, { label, confidence: null }); // no longer the model's verdict
  renderBoxes();
}

function removeBox(i) {
  state.boxes.splice(i, 1);
  state.selected = -1;
  renderBoxes();
}

function newBoxLabel() {
  // The label picked for the photo when it is a camera class, else the model's first camera class.
  const picked = state.classes.find((c) => c.name === state.chosen);
  if (picked && picked.camera) return picked.name;
  return (state.classes.find((c) => c.camera) || { name: state.chosen }).name;
}

function photoPoint(event) {
  const r = $("boxes").getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [clamp((event.clientX - r.left) / r.width) * state.size.w, clamp((event.clientY - r.top) / r.height) * state.size.h];
}

function ordered([x0, y0, x1, y1]) {
  const { w, h } = state.size;
  [x0, x1] = [Math.min(x0, x1), Math.max(x0, x1)];
  [y0, y1] = [Math.min(y0, y1), Math.max(y0, y1)];
  if (x1 - x0 < MIN_BOX) { x1 = Math.min(w, x0 + MIN_BOX); x0 = x1 - MIN_BOX; }
  if (y1 - y0 < MIN_BOX) { y1 = Math.min(h, y0 + MIN_BOX); y0 = y1 - MIN_BOX; }
  return [x0, y0, x1, y1];
}

function resized(box, corner, [x, y]) {
  let [x0, y0, x1, y1] = box;
  if (corner.includes("w")) x0 = x; else x1 = x;
  if (corner.includes("n")) y0 = y; else y1 = y;
  return ordered([x0, y0, x1, y1]);
}

function moved([x0, y0, x1, y1], dx, dy) {
  dx = Math.min(Math.max(dx, -x0), state.size.w - x1); // the whole box stays inside the photo
  dy = Math.min(Math.max(dy, -y0), state.size.h - y1);
  return [x0 + dx, y0 + dy, x1 + dx, y1 + dy];
}

function startDrag(event) {
  if (event.button !== 0 || !state.current) return;
  const el = event.target.closest(".box");
  const i = el ? Number(el.dataset.index) : -1;
  state.drag = { i, corner: event.target.dataset.corner || null, start: photoPoint(event),
    orig: i >= 0 ? [...state.boxes[i].box] : null, x: event.clientX, y: event.clientY, moved: false, created: false };
  $("boxes").setPointerCapture(event.pointerId);
  if (i !== state.selected) selectBox(i);
  event.preventDefault();
}

function drag(event) {
  const d = state.drag;
  if (!d || (!d.moved && Math.hypot(event.clientX - d.x, event.clientY - d.y) < DRAG_PX)) return;
  d.moved = true;
  const p = photoPoint(event);
  if (d.i < 0) { // a press on the bare photo draws a new box from where it started
    d.orig = [...d.start, ...d.start];
    state.boxes.push({ box: ordered(d.orig), label: newBoxLabel(), confidence: null, drawn: true });
    Object.assign(d, { i: state.boxes.length - 1, corner: "se", created: true });
    state.selected = d.i;
  }
  const b = state.boxes[d.i];
  b.box = d.corner ? resized(d.orig, d.corner, p) : moved(d.orig, p[0] - d.start[0], p[1] - d.start[1]);
  renderBoxes();
}

function endDrag() {
  const d = state.drag;
  state.drag = null;
  if (d && d.created) {
    const [x0, y0, x1, y1] = state.boxes[d.i].box;
    const scale = $("boxes").getBoundingClientRect().width / state.size.w;
    if ((x1 - x0) * scale < 3 || (y1 - y0) * scale < 3) { removeBox(d.i); return; } // a slip, not a box
  }
  renderBoxes();
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

function when(text) {
  const date = new Date(text);
  return text && !Number.isNaN(date.getTime()) ? date.toLocaleString() : String(text || "");
}

function webLink(url) {
  // Only http(s) links become links: anything else (javascript:, data:) is shown as text.
  try {
    const parsed = new URL(String(url));
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch { return null; }
}

const CHANNELS = { submit: "the submit page", post: "a social-media post", email: "e-mail", "": "the API" };

function renderProvenance(sub) {
  // Where the photo came from: the intake channel, and the post's link and time or the mail's date.
  const p = $("d-provenance");
  const source = String(sub.source || "");
  const prov = sub.provenance || {};
  p.replaceChildren(`Came by ${Object.hasOwn(CHANNELS, source) ? CHANNELS[source] : source}`);
  if (prov.url) {
    const href = webLink(prov.url);
    const a = document.createElement(href ? "a" : "span");
    if (href) Object.assign(a, { href, target: "_blank", rel: "noopener noreferrer" });
    a.textContent = String(prov.url);
    p.append(": ", a);
  }
  if (prov.time) p.append(`, posted ${when(prov.time)}`);
  if (prov.date) p.append(`, mail sent ${when(prov.date)}`);
  p.append(".");
}

function verdictItem(v, at) {
  const li = document.createElement("li");
  li.textContent = `${v.model.name} ${v.model.version}: ${labelName(v.label)} ${pct(v.confidence)}, ` +
    `${v.decision} (${at})`;
  return li;
}

async function renderVerdicts(sub) {
  // The verdicts earlier models gave before a re-scoring replaced them, then the current one.
  // Another photo's history goes at once; the same photo's stays until the new one is in (a
  // re-render after a claim or review must not blank it).
  const box = $("d-history"), list = $("d-verdicts");
  if (list.dataset.sid !== sub.id) {
    box.hidden = true;
    list.replaceChildren();
    list.dataset.sid = sub.id;
  }
  const response = await api(`/v1/submissions/${sub.id}/verdicts`).catch(() => null);
  const history = response && response.ok ? await response.json() : null;
  if (state.current !== sub) return;
  if (!history || !history.earlier.length) {
    box.hidden = true;
    list.replaceChildren();
    return;
  }
  list.replaceChildren(
    ...history.earlier.map((v) => verdictItem(v, `until ${when(v.replaced_at)}`)),
    verdictItem(history.current, "now"),
  );
  box.hidden = false;
}

function renderTrail(reviews) {
  const list = $("trail");
  list.replaceChildren();
  for (const r of reviews || []) {
    const li = document.createElement("li");
    li.textContent = `rev ${r.revision}: ${r.moderator} ${r.verdict}` + (r.label ? ` ${r.label}` : "") +
      (r.boxes ? `, ${r.boxes.length} box${r.boxes.length === 1 ? "" : "es"}` : "") +
      ` (${new Date(r.created_at).toLocaleString()}` + (r.model_version ? `, model ${r.model_version}` : "") +
      (r.model_label ? ` said ${labelName(r.model_label)}` : "") + ")" + (r.note ? ` — ${r.note}` : "");
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

function pick(label) {
  // A moderator's pick labels the photo and the selected box.
  choose(label);
  if (state.selected >= 0) setBoxLabel(state.selected, label);
}

async function review(verdict) {
  const sub = state.current;
  if (!sub) return;
  if (verdict !== "reject") verdict = state.chosen === sub.result.label ? "confirm" : "correct";
  const body = { verdict, label: verdict === "reject" ? null : state.chosen,
    note: $("review-note").value, revision: sub.revision };
  if (verdict !== "reject") { // the boxes as the moderator left them, in original-photo pixels
    body.boxes = state.boxes.map((b) => ({ box: b.box.map((v) => Math.round(v * 10) / 10), label: b.label }));
  }
  const response = await api(`/v1/submissions/${sub.id}/review`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const answer = await response.json();
  if (response.status === 409 && answer.error.code === "claimed") {
    $("review-msg").textContent = answer.error.message;
    return;
  }
  if (response.status === 409) {
    $("review-msg").textContent = "Someone reviewed this meanwhile; showing the current state.";
    state.items[state.index] = { ...state.items[state.index], ...answer.current };
    await show(state.index);
    return;
  }
  if (!response.ok) { $("review-msg").textContent = answer.error.message; return; }
  state.items[state.index] = { ...state.items[state.index], ...answer, done: verdict };
  state.claimed = null; // a review ends the claim
  $("review-msg").textContent = answer.status === "awaiting_second"
    ? `${verdict}ed — it goes public once a second moderator agrees` : `${verdict}ed`;
  const c = $("counts").textContent;
  if (c) refreshCounts();
  if (state.index + 1 < state.items.length) await show(state.index + 1); else renderQueue();
}

async function refreshCounts() {
  const page = await (await api("/v1/submissions?limit=1")).json();
  showCounts(page.counts);
}

async function deleteCurrent(event) {
  // Erasure (a photo of a person, spam, illegal content): the server keeps only an audit row.
  event.preventDefault();
  const sub = state.current;
  const reason = $("delete-reason").value.trim();
  if (!sub || !reason) { $("delete-msg").textContent = "Say why it is deleted."; return; }
  const response = await api(`/v1/submissions/${sub.id}`, {
    method: "DELETE", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ reason }) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) { $("delete-msg").textContent = (answer.error && answer.error.message) || "Delete failed."; return; }
  state.claimed = null;
  state.items.splice(state.index, 1);
  state.total = Math.max(0, state.total - 1);
  refreshCounts();
  renderQueue();
  await show(Math.min(state.index, state.items.length - 1));
  $("review-msg").textContent = `Deleted ${sub.id}; the audit trail keeps who, when and why.`;
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
  if (/^[1-9]$/.test(key) && labels[Number(key) - 1]) pick(labels[Number(key) - 1].dataset.label);
  else if (key === "enter") review("confirm");
  else if (key === "x") review("reject");
  else if (key === "j") show(Math.min(state.index + 1, state.items.length - 1));
  else if (key === "k") show(Math.max(state.index - 1, 0));
  else if (key === "h") toggleHeatmap();
  else if ((key === "delete" || key === "backspace") && state.selected >= 0) removeBox(state.selected);
  else if (key === "escape" && state.selected >= 0) selectBox(-1);
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
$("delete-form").addEventListener("submit", deleteCurrent);
window.addEventListener("pagehide", () => { // give an open item back when the page closes
  if (state.claimed) fetch(`/v1/submissions/${state.claimed}/claim`,
    { method: "DELETE", keepalive: true, headers: { Authorization: `Bearer ${state.token}` } });
});
for (const id of ["f-status", "f-decision", "f-label"]) $(id).addEventListener("change", () => loadQueue());
for (const b of document.querySelectorAll("[data-label]")) b.addEventListener("click", () => pick(b.dataset.label));
$("boxes").addEventListener("pointerdown", startDrag);
$("boxes").addEventListener("pointermove", drag);
$("boxes").addEventListener("pointerup", endDrag);
$("boxes").addEventListener("pointercancel", endDrag);
$("photo").addEventListener("load", () => { state.photoReady = true; placeBoxes(); });
const relayout = new ResizeObserver(placeBoxes); // the photo is shown scaled: follow its size and place
relayout.observe($("photo"));
relayout.observe(document.querySelector(".photo"));
for (const b of document.querySelectorAll("[data-export]")) {
  b.addEventListener("click", () => download(b.dataset.export, b.dataset.name));
}
document.addEventListener("keydown", onKey);
if (state.token) login(state.token);

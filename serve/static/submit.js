// The public submit page: pick a photo, say where it is (typed, map link, GPS, pin), send, see the verdict.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const config = JSON.parse($("submit-config").textContent);
  const T = JSON.parse($("submit-texts").textContent);
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
  let photo = null;
  let pin = null;
  let map = null;

  function showError(code, message, where) {
    const known = (T.errors || {})[code];
    const box = $(where || "error");
    box.textContent = known || fill(T.error, { message: message || code });
    box.hidden = false;
  }

  function choose(input) {
    if (!input.files || !input.files.length) return;
    photo = input.files[0];
    $("photo-name").textContent = fill(T.photo_chosen, { name: photo.name || "" });
    $("error").hidden = true;
  }

  function setLocation(lat, lon) {
    $("location").value = lat.toFixed(6) + ", " + lon.toFixed(6);
    if (map) {
      if (pin) pin.setLatLng([lat, lon]); else pin = L.marker([lat, lon]).addTo(map);
    }
  }

  function startMap() {
    if (typeof L === "undefined" || !config.tileUrl) { $("pin-map").hidden = true; return; }
    map = L.map("pin-map").setView([44.8125, 20.4612], 12);
    L.tileLayer(config.tileUrl, { maxZoom: 19, attribution: config.attribution || "" }).addTo(map);
    map.on("click", (e) => setLocation(e.latlng.lat, e.latlng.lng));
  }

  function locate(found, hint) {
    if (!navigator.geolocation) { $(hint).textContent = T.location_denied; $(hint).hidden = false; return; }
    $(hint).textContent = T.location_locating;
    navigator.geolocation.getCurrentPosition(
      (pos) => found(pos.coords.latitude, pos.coords.longitude),
      () => { $(hint).textContent = T.location_denied; $(hint).hidden = false; },
      { enableHighAccuracy: true, timeout: 15000 });
  }

  function locateForForm() {
    locate((lat, lon) => { setLocation(lat, lon); $("location-hint").textContent = T.location_hint;
                           if (map) map.setView([lat, lon], 17); }, "location-hint");
  }

  function showLocation(loc) {
    $("verdict-location").textContent = loc ? fill(T.verdict_location, { lat: loc.lat.toFixed(5), lon: loc.lon.toFixed(5) })
                                            : T.verdict_no_location;
  }

  async function addLocation(event, token) {
    event.preventDefault();
    $("late-error").hidden = true;
    const response = await fetch("/v1/follow/" + encodeURIComponent(token) + "/location", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ location: $("late-location").value.trim() }) }).catch(() => null);
    if (!response) { showError("network", "", "late-error"); return; }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) { const err = answer.error || {}; showError(err.code || "network", err.message, "late-error"); return; }
    showLocation(answer.location);
    $("verdict-location").textContent += " — " + T.location_added;
    $("add-location").hidden = true;
  }

  function drawBoxes(answer) {
    const holder = $("boxes");
    holder.textContent = "";
    for (const cam of answer.cameras || []) {
      const [x0, y0, x1, y1] = cam.box;
      const div = document.createElement("div");
      div.className = "box";
      div.style.left = (100 * x0 / answer.width) + "%";
      div.style.top = (100 * y0 / answer.height) + "%";
      div.style.width = (100 * (x1 - x0) / answer.width) + "%";
      div.style.height = (100 * (y1 - y0) / answer.height) + "%";
      const tag = document.createElement("span");
      tag.textContent = cam.label;
      div.appendChild(tag);
      holder.appendChild(div);
    }
  }

  function showVerdict(answer) {
    $("submit-form").hidden = true;
    $("verdict").hidden = false;
    $("verdict-text").textContent = answer.message;
    $("verdict-duplicate").hidden = !answer.duplicate;
    $("preview").src = answer.preview;
    drawBoxes(answer);
    showLocation(answer.location);
    const token = new URL(answer.follow_url, location.href).searchParams.get("follow");
    $("add-location").hidden = Boolean(answer.location);
    $("add-location").onsubmit = (e) => addLocation(e, token);
    $("follow-link").href = answer.follow_url;
    window.scrollTo(0, 0);
  }

  async function send(event) {
    event.preventDefault();
    $("error").hidden = true;
    if (!photo) { showError("missing_field"); return; }
    const body = new FormData();
    body.append("image", photo, photo.name || "photo");
    body.append("location", $("location").value.trim());
    body.append("note", $("note").value.trim());
    body.append("lang", config.lang);
    $("send").disabled = true;
    $("send").textContent = T.sending;
    try {
      const response = await fetch("/v1/submit", { method: "POST", body });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) { showVerdict(answer); return; }
      const err = answer.error || {};
      showError(err.code || "network", err.message);
    } catch (e) {
      showError("network");
    } finally {
      $("send").disabled = false;
      $("send").textContent = T.send;
    }
  }

  async function showStatus(token) {
    $("submit-form").hidden = true;
    $("status").hidden = false;
    const response = await fetch("/v1/follow/" + encodeURIComponent(token)).catch(() => null);
    if (!response || !response.ok) { $("status-text").textContent = T.status_unknown; return; }
    const found = await response.json();
    $("status-text").textContent = T["status_" + found.status] || found.status;
    $("status-date").textContent = fill(T.status_received, { date: found.received });
  }

  const follow = new URLSearchParams(location.search).get("follow");
  if (follow) { showStatus(follow); return; }
  $("photo-camera").addEventListener("change", (e) => choose(e.target));
  $("photo-file").addEventListener("change", (e) => choose(e.target));
  $("locate").addEventListener("click", locateForForm);
  $("late-locate").addEventListener("click", () => locate((lat, lon) => {
    $("late-location").value = lat.toFixed(6) + ", " + lon.toFixed(6); }, "late-error"));
  $("location").addEventListener("change", () => {  // typed "lat, lon": show it on the map
    const m = /^\s*(-?\d{1,2}\.\d+)\s*,\s*(-?\d{1,3}\.\d+)\s*$/.exec($("location").value);
    if (m && map) { setLocation(+m[1], +m[2]); map.setView([+m[1], +m[2]], 16); }
  });
  $("submit-form").addEventListener("submit", send);
  startMap();
})();

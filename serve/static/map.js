// The public camera map: clustered points coloured by model, popups, filters, downloads, charts.
// Everything comes from this server (Leaflet is vendored); only the tiles come from the tile URL,
// and the map works without them (points on a plain background).
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("map-config").textContent);
  const COLOURS = 8; // .m0 … .m7 in map.css
  const colourOf = {};
  config.models.forEach((m, i) => { colourOf[m.label] = i % COLOURS; });

  const map = L.map("map", { zoomControl: true }).setView([44.8125, 20.4612], 12);
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { maxZoom: 19, attribution: config.attribution }).addTo(map);
  }
  const clusters = L.markerClusterGroup({ maxClusterRadius: 50, showCoverageOnHover: false });
  map.addLayer(clusters);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function icon(label) {
    const i = colourOf[label] === undefined ? COLOURS - 1 : colourOf[label];
    return L.divIcon({ className: "cam-icon", html: `<span class="cam-dot m${i}"></span>`, iconSize: [18, 18] });
  }

  function popup(p) {
    const box = el("div", { class: "cam-popup" });
    box.append(el("strong", {}, p.model));
    const facts = el("dl");
    const rows = [["first seen", p.first_seen], ["last seen", p.last_seen], ["photos", String(p.photo_count)],
      ["status", p.status]];
    if (p.mount) rows.push(["mount", p.mount]);
    if (p.district) rows.push(["district", p.district]);
    rows.push(["accuracy", `± ${p.radius_m} m`]);
    rows.forEach(([k, v]) => { facts.append(el("dt", {}, k), el("dd", {}, v)); });
    box.append(facts);
    box.append(el("img", { src: p.photo_url, alt: `photo of the ${p.model} (faces and plates blurred)`,
      loading: "lazy", width: "240" }));
    return box;
  }

  function query() {
    const params = new URLSearchParams();
    const model = document.getElementById("model").value;
    const district = document.getElementById("district").value;
    if (model) params.set("model", model);
    if (district) params.set("district", district);
    const q = params.toString();
    return q ? `?${q}` : "";
  }

  function bars(target, rows, key) {
    const node = document.getElementById(target);
    node.replaceChildren();
    if (!rows.length) { node.append(el("p", { class: "fine" }, "none yet")); return; }
    const max = Math.max(...rows.map((r) => r.count));
    const h = 18, w = 320, labelW = 150;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${rows.length * h}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("class", "chart");
    rows.forEach((r, i) => {
      const ns = "http://www.w3.org/2000/svg";
      const text = document.createElementNS(ns, "text");
      text.setAttribute("x", "0"); text.setAttribute("y", String(i * h + 13));
      text.textContent = r[key] === null ? "(none)" : r[key];
      const bar = document.createElementNS(ns, "rect");
      const bw = Math.max(2, ((w - labelW - 30) * r.count) / max);
      bar.setAttribute("x", String(labelW)); bar.setAttribute("y", String(i * h + 3));
      bar.setAttribute("width", String(bw)); bar.setAttribute("height", String(h - 6));
      const n = document.createElementNS(ns, "text");
      n.setAttribute("x", String(labelW + bw + 4)); n.setAttribute("y", String(i * h + 13));
      n.textContent = String(r.count);
      svg.append(text, bar, n);
    });
    node.append(svg);
  }

  function legend() {
    const ul = document.getElementById("legend");
    config.models.forEach((m) => {
      const li = el("li");
      li.append(el("span", { class: `cam-dot m${colourOf[m.label]}` }), document.createTextNode(` ${m.model}`));
      ul.append(li);
    });
  }

  async function load() {
    const q = query();
    ["geojson", "csv", "kml"].forEach((kind) => {
      document.getElementById(`dl-${kind}`).href = `/v1/export/cameras.${kind}${q}`;
    });
    const summary = document.getElementById("summary");
    try {
      const [geo, stats] = await Promise.all([
        fetch(`/v1/export/cameras.geojson${q}`).then((r) => r.json()),
        fetch(`/v1/stats${q}`).then((r) => r.json()),
      ]);
      clusters.clearLayers();
      const markers = geo.features.map((f) => {
        const [lon, lat] = f.geometry.coordinates; // GeoJSON is [lon, lat]
        const marker = L.marker([lat, lon], { icon: icon(f.properties.label), title: f.properties.model });
        marker.bindPopup(() => popup(f.properties), { maxWidth: 260 });
        return marker;
      });
      // Frame the points first, without animation, then cluster them at the final zoom: no
      // re-clustering runs after the page says it is loaded, so a click lands on a marker that stays.
      if (markers.length) {
        const bounds = L.latLngBounds(markers.map((m) => m.getLatLng()));
        map.fitBounds(bounds, { padding: [30, 30], maxZoom: 16, animate: false });
      }
      clusters.addLayers(markers);
      summary.textContent = `${geo.features.length} camera${geo.features.length === 1 ? "" : "s"} on the map`;
      bars("chart-month", stats.per_month, "month");
      bars("chart-model", stats.per_model, "model");
      const byDistrict = stats.per_district.filter((r) => r.district !== null);
      document.getElementById("district-heading").hidden = !byDistrict.length;
      if (byDistrict.length) bars("chart-district", byDistrict, "district");
      else document.getElementById("chart-district").replaceChildren();
      document.getElementById("map").dataset.loaded = String(geo.features.length);
    } catch (err) {
      summary.textContent = `The cameras could not be loaded (${err}); try again later.`;
    }
  }

  document.getElementById("model").addEventListener("change", load);
  document.getElementById("district").addEventListener("change", load);
  legend();
  load();
})();

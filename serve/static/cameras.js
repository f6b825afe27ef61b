// camid moderators' page, camera registry panel (#16): which physical camera each box shows.
// It watches the submission the page shows (#d-id), asks the server for the candidates
// ("same as camera cam-…, Huawei IPC6625-Z30, 14 m away, 3 photos") and, for a verified
// submission, lets the moderator keep, pick another or create a new camera per box.
(function () {
  "use strict";
  const panel = document.getElementById("camera-match");
  const idNode = document.getElementById("d-id");
  if (!panel || !idNode) return;
  let shown = "";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function call(path, options) {
    const token = sessionStorage.getItem("camid-token") || "";
    const headers = { ...((options && options.headers) || {}), Authorization: `Bearer ${token}` };
    return fetch(path, { ...(options || {}), headers });
  }

  function choice(name, value, text, checked) {
    const label = el("label", { class: "cm-choice" });
    const input = el("input", { type: "radio", name, value });
    input.checked = checked;
    label.append(input, document.createTextNode(` ${text}`));
    return label;
  }

  function render(id, data, verified) {
    panel.replaceChildren(el("h3", {}, verified ? "Which camera is this?" : "Confirming would match"));
    if (!data.boxes.length) { panel.append(el("p", { class: "hint" }, "No camera to match.")); return; }
    data.boxes.forEach((box) => {
      const group = el("fieldset", { class: "cm-box", "data-box": String(box.box_index) });
      const shown = typeof labelName === "function" ? labelName(box.label) : box.label; // moderation.js
      group.append(el("legend", {}, `Box ${box.box_index + 1} (${shown})`));
      const name = `cm-${box.box_index}`;
      if (box.camera_id) group.append(choice(name, box.camera_id, `keep camera ${box.camera_id}`, true));
      box.candidates.forEach((c, i) => {
        const spread = c.spread_m ? ` (its photos spread over ${Math.round(c.spread_m)} m)` : "";
        group.append(choice(name, c.camera_id, c.text + spread, !box.camera_id && i === 0));
      });
      if (!box.candidates.length && !box.camera_id) group.append(el("p", { class: "hint" }, "no camera nearby: a new one"));
      if (verified) group.append(choice(name, "new", "a new camera", false));
      group.querySelectorAll("input").forEach((input) => { input.disabled = !verified; });
      panel.append(group);
    });
    if (!verified) return;
    const apply = el("button", { type: "button", id: "cm-apply" }, "Save cameras");
    const msg = el("p", { id: "cm-msg", class: "msg", role: "status" });
    apply.addEventListener("click", async () => {
      const boxes = {};
      panel.querySelectorAll("fieldset.cm-box").forEach((f) => {
        const picked = f.querySelector("input:checked");
        if (picked) boxes[f.dataset.box] = picked.value;
      });
      const r = await call(`/v1/submissions/${id}/cameras`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ boxes }) });
      const answer = await r.json();
      if (!r.ok) { msg.textContent = answer.error.message; return; }
      render(id, answer, true);
      document.getElementById("cm-msg").textContent = "saved";
    });
    panel.append(apply, msg);
    data.boxes.filter((b) => b.camera_id).forEach((b) => panel.append(mergeForm(id, b.camera_id)));
  }

  function mergeForm(id, camera) {
    // Merging moves every photo of one camera into another (audited); the ids come from the list.
    const form = el("form", { class: "cm-merge" });
    const input = el("input", { type: "text", placeholder: "cam-…", "aria-label": `merge ${camera} into` });
    const note = el("p", { class: "msg", role: "status" });
    form.append(el("span", {}, `Merge ${camera} into `), input, el("button", { type: "submit" }, "Merge"), note);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const r = await call(`/v1/cameras/${encodeURIComponent(camera)}/merge`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ into: input.value.trim() }) });
      const answer = await r.json();
      if (!r.ok) { note.textContent = answer.error.message; return; }
      shown = "";
      await refresh();
      const done = document.getElementById("cm-msg");
      if (done) done.textContent = `merged ${camera} into ${answer.id} (${answer.photo_count} photos)`;
    });
    return form;
  }

  async function refresh() {
    const id = idNode.textContent.trim();
    if (!id || id === shown) return;
    shown = id;
    panel.hidden = true;
    const r = await call(`/v1/submissions/${id}/cameras`);
    if (!r.ok || idNode.textContent.trim() !== id) return;
    const verified = (document.getElementById("d-status").textContent || "").startsWith("verified");
    render(id, await r.json(), verified);
    panel.hidden = false;
  }

  new MutationObserver(() => { shown = ""; refresh(); }).observe(document.getElementById("d-status"),
    { childList: true, characterData: true, subtree: true });
  new MutationObserver(refresh).observe(idNode, { childList: true, characterData: true, subtree: true });
})();

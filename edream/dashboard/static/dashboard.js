// The live dashboard: first paint from /api/dashboard (no waiting for the stream), then every snapshot pushed by
// /api/stream (server-sent events). Panels are lists of blocks rendered by render.js.
(function () {
  "use strict";
  const { text, renderBlocks, getJSON } = window.edream;
  const main = document.getElementById("panels");
  const nav = document.getElementById("nav");
  const conn = document.getElementById("conn");
  const clock = document.getElementById("clock");
  let shown = 0;

  function hash(s) { let h = 0; for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0; return (h >>> 0).toString(16); }

  function renderPanel(p) {
    let sec = document.getElementById("panel-" + p.id);
    if (!sec) {
      sec = document.createElement("section"); sec.className = "panel"; sec.id = "panel-" + p.id; sec.dataset.panel = p.id;
      main.appendChild(sec);
      const a = document.createElement("a"); a.href = "#panel-" + p.id; a.textContent = p.title; nav.appendChild(a);
    }
    const body = JSON.stringify(p.blocks || []);
    const digest = hash(body + (p.note || "") + (p.error || ""));
    if (sec.dataset.digest === digest) return; // unchanged: keep the charts' zoom and hover state
    const frag = document.createDocumentFragment();
    frag.appendChild(text("h2", "", p.title));
    if (p.description) frag.appendChild(text("p", "desc", p.description));
    if (p.error) frag.appendChild(text("p", "note error", p.error));
    if (p.note) frag.appendChild(text("p", "note", p.note));
    renderBlocks(p.blocks, frag);
    sec.replaceChildren(frag);
    sec.dataset.digest = digest;
    sec.dataset.empty = String(!!p.empty || !(p.blocks || []).length);
    sec.dataset.updates = String(Number(sec.dataset.updates || 0) + 1);
    const alerts = (p.blocks || []).find(b => b.kind === "alerts");
    if (alerts) sec.classList.toggle("alerting", alerts.alerts.length > 0);
  }

  function apply(snap) {
    if (snap.version <= shown) return; // an older snapshot (the first fetch raced the stream)
    shown = snap.version;
    Object.values(snap.panels).forEach(renderPanel);
    document.body.dataset.version = String(snap.version);
    clock.textContent = window.utcText(snap.time_ms);
  }

  function connect() {
    // EventSource cannot send headers: the stream takes the token as the RFC 6750 access_token query parameter
    const token = new URLSearchParams(location.hash.slice(1)).get("token");
    const es = new EventSource(token ? "/api/stream?access_token=" + encodeURIComponent(token) : "/api/stream");
    es.addEventListener("open", () => { conn.textContent = "live"; conn.className = "conn up"; });
    es.addEventListener("snapshot", ev => apply(JSON.parse(ev.data)));
    es.addEventListener("error", () => { conn.textContent = "reconnecting..."; conn.className = "conn down"; });
  }

  getJSON("/api/dashboard").then(snap => {
    apply(snap);
    document.body.dataset.firstPaint = String(Math.round(performance.now()));
  }).catch(e => { main.appendChild(text("p", "note error", "cannot load /api/dashboard: " + e.message)); });
  connect();
})();

// Renders the panels pushed by /api/stream (server-sent events). Each panel is a list of blocks of kind
// "stats" | "table" | "series"; a new panel needs no change here if it uses these kinds.
(function () {
  "use strict";
  const main = document.getElementById("panels");
  const nav = document.getElementById("nav");
  const conn = document.getElementById("conn");
  const clock = document.getElementById("clock");

  function text(tag, cls, s) { const e = document.createElement(tag); if (cls) e.className = cls; e.textContent = s; return e; }
  function cell(v) {
    const td = document.createElement("td");
    if (v && typeof v === "object" && v.href) {
      const a = document.createElement("a"); a.href = v.href; a.target = "_blank"; a.textContent = v.text || v.href; td.appendChild(a);
    } else if (typeof v === "number" && v > 1e12 && v < 1e13) {
      td.textContent = new Date(v).toISOString().replace("T", " ").slice(0, 19) + "Z"; td.title = String(v);
    } else {
      td.textContent = v === null || v === undefined ? "" : String(v);
    }
    return td;
  }
  function hash(s) { let h = 0; for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0; return (h >>> 0).toString(16); }

  const renderers = {
    stats(b) {
      const d = document.createElement("div"); d.className = "stats";
      (b.stats || []).forEach(s => {
        const st = document.createElement("div"); st.className = "stat";
        st.appendChild(text("div", "v", String(s.value) + (s.unit ? " " + s.unit : "")));
        st.appendChild(text("div", "l", s.label));
        d.appendChild(st);
      });
      return d;
    },
    table(b) {
      const d = document.createElement("div");
      if (b.title) d.appendChild(text("h3", "", b.title));
      if (b.note) d.appendChild(text("p", "note", b.note));
      const rows = b.rows || [];
      if (!rows.length) { if (!b.note) d.appendChild(text("p", "note", "no rows yet")); return d; }
      const cols = Object.keys(rows[0]);
      const wrap = document.createElement("div"); wrap.className = "tablewrap";
      const t = document.createElement("table");
      const hr = document.createElement("tr"); cols.forEach(c => hr.appendChild(text("th", "", c)));
      t.appendChild(hr);
      rows.forEach(r => { const tr = document.createElement("tr"); cols.forEach(c => tr.appendChild(cell(r[c]))); t.appendChild(tr); });
      wrap.appendChild(t); d.appendChild(wrap);
      return d;
    },
    series(b) { return window.plotSeries(b.title || "", b.unit || "", b.series || [], !!b.step); },
  };

  function renderPanel(p) {
    let sec = document.getElementById("panel-" + p.id);
    if (!sec) {
      sec = document.createElement("section"); sec.className = "panel"; sec.id = "panel-" + p.id; sec.dataset.panel = p.id;
      main.appendChild(sec);
      const a = document.createElement("a"); a.href = "#panel-" + p.id; a.textContent = p.title; nav.appendChild(a);
    }
    const frag = document.createDocumentFragment();
    frag.appendChild(text("h2", "", p.title));
    if (p.description) frag.appendChild(text("p", "desc", p.description));
    if (p.error) frag.appendChild(text("p", "note error", p.error));
    if (p.note) frag.appendChild(text("p", "note", p.note));
    const charts = document.createElement("div"); charts.className = "charts";
    (p.blocks || []).forEach(b => {
      const r = renderers[b.kind];
      const node = r ? r(b) : text("p", "note", "unknown block kind " + b.kind);
      (b.kind === "series" ? charts : frag).appendChild(node);
    });
    if (charts.childNodes.length) frag.appendChild(charts);
    sec.replaceChildren(frag);
    const body = JSON.stringify(p.blocks || []);
    sec.dataset.digest = hash(body);
    sec.dataset.empty = String(!!p.empty || !(p.blocks || []).length);
    sec.dataset.updates = String(Number(sec.dataset.updates || 0) + 1);
  }

  function apply(snap) {
    Object.values(snap.panels).forEach(renderPanel);
    document.body.dataset.version = String(snap.version);
    clock.textContent = new Date(snap.time_ms).toLocaleTimeString();
  }

  function connect() {
    // with EDREAM_API_TOKEN set, open the page as /#token=<token>: the fragment never leaves the browser, and
    // EventSource cannot send headers, so the stream gets it as the RFC 6750 access_token query parameter
    const token = new URLSearchParams(location.hash.slice(1)).get("token");
    const es = new EventSource(token ? "/api/stream?access_token=" + encodeURIComponent(token) : "/api/stream");
    es.addEventListener("open", () => { conn.textContent = "live"; conn.className = "conn up"; });
    es.addEventListener("snapshot", ev => apply(JSON.parse(ev.data)));
    es.addEventListener("error", () => { conn.textContent = "reconnecting..."; conn.className = "conn down"; });
  }
  connect();
})();

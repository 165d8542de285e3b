// Block renderers shared by the live dashboard and the drill-down pages. A block is {kind: "stats" | "table" |
// "series" | "alerts" | "verify" | "heatmap", ...}; times (UTC epoch ms) are shown in UTC, units are in labels and headers.
(function () {
  "use strict";
  const BAD = new Set(["DOWN", "RETRYING", "SHORTFALL", "STALE", "ERROR", "INVALID", "PENALTY", "OVERLOAD", "NOT CONVERGED"]);
  const WARN = new Set(["STARTING", "PARTIAL", "OVERDELIVERY", "PROJECTED", "MISSING FORECASTS"]);

  function text(tag, cls, s) { const e = document.createElement(tag); if (cls) e.className = cls; e.textContent = s; return e; }
  function isTime(col, v) { return typeof v === "number" && v > 1e12 && v < 1e13 && /(_ms|_at|^ts|^t)$/.test(col); }
  function header(col) { return /(_ms|_at)$/.test(col) ? col + " (UTC)" : col; }

  function cell(col, v) {
    const td = document.createElement("td");
    if (v && typeof v === "object" && v.href) {
      const a = document.createElement("a"); a.href = v.href; a.textContent = v.text || v.href;
      if (/^\/api\//.test(v.href)) a.target = "_blank";
      td.appendChild(a);
    } else if (isTime(col, v)) {
      td.textContent = window.utcText(v); td.title = String(v);
    } else {
      td.textContent = v === null || v === undefined ? "" : String(v);
      if (BAD.has(td.textContent)) td.className = "bad";
      else if (WARN.has(td.textContent)) td.className = "warn";
    }
    return td;
  }

  async function getJSON(url) {
    // with EDREAM_API_TOKEN set, open the page with #token=<token> (the fragment never leaves the browser)
    const token = new URLSearchParams(location.hash.slice(1)).get("token");
    const r = await fetch(url, { headers: token ? { Authorization: "Bearer " + token } : {} });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

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
      const hr = document.createElement("tr"); cols.forEach(c => hr.appendChild(text("th", "", header(c))));
      t.appendChild(hr);
      rows.forEach(r => {
        const tr = document.createElement("tr");
        cols.forEach(c => tr.appendChild(cell(c, r[c])));
        if ([...tr.children].some(td => td.className === "bad")) tr.className = "bad";
        t.appendChild(tr);
      });
      wrap.appendChild(t); d.appendChild(wrap);
      return d;
    },
    series(b) {
      return window.plotSeries(b.title || "", b.unit || "", b.series || [], {
        step: !!b.step, href: b.href, reporting: b.reporting, wide: !!b.wide, xUnit: b.x_unit, band: b.band,
        reportingTimes: b.reporting && b.series && b.series[0] ? b.series[0].points.map(p => p[0]) : null,
      });
    },
    heatmap(b) {
      // rows x cols (UTC epoch ms) of values; a cell is red above its row's limit, amber above 80 % of it
      const d = document.createElement("div");
      if (b.title) d.appendChild(text("h3", "", b.title + (b.unit ? " (" + b.unit + ")" : "")));
      const cols = b.cols || [];
      if (!cols.length) { d.appendChild(text("p", "note", "no rows yet")); return d; }
      const wrap = document.createElement("div"); wrap.className = "tablewrap";
      const t = document.createElement("table"); t.className = "heatmap";
      const hr = document.createElement("tr"); hr.appendChild(text("th", "", "UTC"));
      cols.forEach(c => { const th = text("th", "", window.utcText(c).slice(-12, -7)); th.title = window.utcText(c); hr.appendChild(th); });
      t.appendChild(hr);
      (b.rows || []).forEach((name, i) => {
        const tr = document.createElement("tr"); tr.appendChild(text("th", "", name));
        const limit = (b.limits || [])[i] || 100;
        (b.values[i] || []).forEach((v, j) => {
          const td = text("td", "", v === null || v === undefined ? "" : String(Math.round(v)));
          td.className = v === null || v === undefined ? "none" : v > limit ? "hot" : v > 0.8 * limit ? "warm" : "cool";
          td.title = `${name} ${window.utcText(cols[j])}: ${v === null || v === undefined ? "no figure" : v + " " + (b.unit || "")}`;
          tr.appendChild(td);
        });
        t.appendChild(tr);
      });
      wrap.appendChild(t); d.appendChild(wrap);
      return d;
    },
    alerts(b) {
      const d = document.createElement("div"); d.className = "alerts";
      const list = b.alerts || [];
      d.dataset.count = String(list.length);
      if (!list.length) { d.appendChild(text("p", "ok", "no alerts")); return d; }
      list.forEach(a => {
        const row = text("div", "alert " + a.severity, "");
        row.appendChild(text("strong", "", a.name));
        row.appendChild(document.createTextNode(` ${a.subject}: ${a.detail}`));
        d.appendChild(row);
      });
      return d;
    },
    verify(b) {
      const d = document.createElement("div"); d.className = "verify";
      d.appendChild(text("h3", "", b.title || "Verification"));
      const out = text("p", "note", "verifying against the chain...");
      d.appendChild(out);
      getJSON(b.url).then(r => {
        out.textContent = `${r.status}${r.error ? ": " + r.error : ""}${r.detail ? " - " + r.detail : ""}`;
        out.className = r.status === "VALID" ? "ok" : "note bad";
      }).catch(e => { out.textContent = "ERROR: " + e.message; out.className = "note bad"; });
      return d;
    },
  };

  function renderBlocks(blocks, frag) {
    const charts = document.createElement("div"); charts.className = "charts";
    (blocks || []).forEach(b => {
      const r = renderers[b.kind];
      const node = r ? r(b) : text("p", "note", "unknown block kind " + b.kind);
      (b.kind === "series" ? charts : frag).appendChild(node);
    });
    if (charts.childNodes.length) frag.appendChild(charts);
  }

  window.edream = { text, renderBlocks, getJSON };
})();

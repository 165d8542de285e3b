// Minimal SVG line/step charts (no dependencies): plotSeries(title, unit, series, step) -> HTMLElement.
// series = [{name, points: [[t_ms, y], ...]}]; x is UTC epoch ms, shown in the browser's local time.
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#be123c"];
  const W = 520, H = 170, L = 44, R = 8, T = 8, B = 20;

  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(v) {
    const a = Math.abs(v);
    return a >= 1e6 ? (v / 1e6).toFixed(1) + "M" : a >= 1e4 ? (v / 1e3).toFixed(0) + "k" : a >= 100 ? v.toFixed(0) : v.toFixed(a >= 1 ? 2 : 3);
  }
  function hhmm(t) { const d = new Date(t); return d.toTimeString().slice(0, 5); }

  function plotSeries(title, unit, series, step) {
    const wrap = document.createElement("div");
    wrap.className = "chart";
    const h = document.createElement("h3");
    h.textContent = title + (unit ? " (" + unit + ")" : "");
    wrap.appendChild(h);
    const pts = series.flatMap(s => s.points.filter(p => p[1] !== null));
    const svg = el("svg", { class: "plot", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
    if (!pts.length) {
      svg.appendChild(el("text", { x: W / 2 - 30, y: H / 2 }, "no data yet"));
    } else {
      let x0 = Math.min(...pts.map(p => p[0])), x1 = Math.max(...pts.map(p => p[0]));
      let y0 = Math.min(0, ...pts.map(p => p[1])), y1 = Math.max(...pts.map(p => p[1]));
      if (x1 === x0) { x0 -= 60000; x1 += 60000; }
      if (y1 === y0) { y1 = y0 + 1; }
      const sx = t => L + (t - x0) / (x1 - x0) * (W - L - R);
      const sy = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
      svg.appendChild(el("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
      svg.appendChild(el("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
      [y0, (y0 + y1) / 2, y1].forEach(v => svg.appendChild(el("text", { x: 2, y: sy(v) + 3 }, fmt(v))));
      [x0, (x0 + x1) / 2, x1].forEach((t, i) => svg.appendChild(el("text", { x: sx(t) - (i === 2 ? 28 : i ? 14 : 0), y: H - 5 }, hhmm(t))));
      series.forEach((s, i) => {
        const p = s.points.filter(q => q[1] !== null);
        if (!p.length) return;
        let d = "";
        p.forEach((q, j) => {
          if (j === 0) d += `M${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`;
          else if (step) d += `H${sx(q[0]).toFixed(1)}V${sy(q[1]).toFixed(1)}`;
          else d += `L${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`;
        });
        svg.appendChild(el("path", { d: d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.6, "data-series": s.name }));
        if (p.length === 1) svg.appendChild(el("circle", { cx: sx(p[0][0]), cy: sy(p[0][1]), r: 3, fill: COLORS[i % COLORS.length] }));
      });
    }
    wrap.appendChild(svg);
    const legend = document.createElement("div");
    legend.className = "legend";
    series.forEach((s, i) => {
      const span = document.createElement("span");
      span.innerHTML = `<i style="background:${COLORS[i % COLORS.length]}"></i>`;
      span.appendChild(document.createTextNode(`${s.name} (${s.points.length})`));
      legend.appendChild(span);
    });
    wrap.appendChild(legend);
    return wrap;
  }
  window.plotSeries = plotSeries;
})();

// Time-series charts with uPlot (vendored from npm by `npm run vendor`): plotSeries(title, unit, series, opts).
// series = [{name, points: [[t_ms, y|null], ...]}]; x is UTC epoch ms, shown in UTC (with opts.xUnit, x is a plain
// quantity in that unit, e.g. kWh of a supply curve). opts.band = [upper name, lower name] shades between two series. Drag to zoom (double-click
// resets), hover for a tooltip with every series' value, click a legend entry to hide/show its series.
(function () {
  "use strict";
  const COLORS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#be123c"];
  const utc = ts => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
  const pad = n => String(n).padStart(2, "0");

  function utcText(ms) {
    const d = new Date(ms);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
  }
  function fmt(v) {
    if (v === null || v === undefined) return "-";
    const a = Math.abs(v);
    return a >= 1e4 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : v.toFixed(3);
  }

  // All series on one x axis: the union of their times; a series without a point at a time gets `undefined`
  // (uPlot draws across it) while a real `null` (nothing reporting) stays a gap.
  function align(series, isTime) {
    const xs = [...new Set(series.flatMap(s => s.points.map(p => p[0])))].sort((a, b) => a - b);
    const idx = new Map(xs.map((t, i) => [t, i]));
    const ys = series.map(s => {
      const y = new Array(xs.length).fill(undefined);
      s.points.forEach(p => { y[idx.get(p[0])] = p[1]; });
      return y;
    });
    return [isTime ? xs.map(t => t / 1000) : xs, ...ys];
  }

  function tooltipPlugin(unit, extra, xText) {
    let tip;
    return {
      hooks: {
        init: u => {
          tip = document.createElement("div");
          tip.className = "u-tooltip";
          tip.style.display = "none";
          u.over.appendChild(tip);
          u.over.addEventListener("mouseleave", () => { tip.style.display = "none"; });
        },
        setCursor: u => {
          const i = u.cursor.idx;
          if (i === null || i === undefined) { tip.style.display = "none"; return; }
          const t = xText ? u.data[0][i] : Math.round(u.data[0][i] * 1000);
          const lines = [xText ? xText(t) : utcText(t)];
          u.series.slice(1).forEach((s, k) => {
            if (s.show) lines.push(`${s.label}: ${fmt(u.data[k + 1][i])} ${unit}`);
          });
          if (extra) { const e = extra(t); if (e) lines.push(e); }
          tip.textContent = lines.join("\n");
          tip.dataset.t = String(t);
          tip.style.display = "block";
          const left = u.cursor.left, w = u.over.clientWidth;
          tip.style.left = (left > w / 2 ? left - tip.offsetWidth - 10 : left + 10) + "px";
          tip.style.top = Math.max(0, u.cursor.top - 10) + "px";
        },
      },
    };
  }

  // one time only (a single slot): show 15 minutes either side. uPlot widens a single time by 86400 / ms before
  // calling this (1000 days with x in seconds), so look at the data, not at min and max.
  function xRange(u, min, max) {
    const xs = u.data[0];
    return xs.length && xs[0] === xs[xs.length - 1] ? [xs[0] - 900, xs[0] + 900] : [min, max];
  }

  function plotSeries(title, unit, series, opts) {
    opts = opts || {};
    const wrap = document.createElement("div");
    wrap.className = opts.wide ? "chart wide" : "chart";
    const h = document.createElement("h3");
    if (opts.href) { const a = document.createElement("a"); a.href = opts.href; a.textContent = title; h.appendChild(a); }
    else h.textContent = title;
    const isTime = !opts.xUnit;
    h.appendChild(document.createTextNode(isTime ? (unit ? ` (${unit}, UTC)` : " (UTC)") : ` (${unit} vs ${opts.xUnit})`));
    wrap.appendChild(h);
    if (!series.some(s => s.points.some(p => p[1] !== null))) {
      wrap.appendChild(Object.assign(document.createElement("p"), { className: "note", textContent: "no data yet" }));
      return wrap;
    }
    const host = document.createElement("div");
    wrap.appendChild(host);
    const data = align(series, isTime);
    const xText = isTime ? null : x => `${fmt(x)} ${opts.xUnit}`;
    const idx = name => series.findIndex(s => s.name === name) + 1;
    const bands = opts.band && idx(opts.band[0]) && idx(opts.band[1])
      ? [{ series: [idx(opts.band[0]), idx(opts.band[1])], fill: "rgba(234, 88, 12, 0.12)" }] : undefined;
    const paths = opts.step ? uPlot.paths.stepped({ align: 1 }) : undefined;
    const reporting = opts.reporting && opts.reportingTimes ? new Map(opts.reportingTimes.map((t, i) => [t, opts.reporting[i]])) : null;
    const chart = () => new uPlot({
      width: Math.max(240, host.clientWidth || 520),
      height: 190,
      tzDate: utc,
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      scales: { x: isTime ? { time: true, range: xRange } : { time: false } },
      axes: [
        isTime ? {} : { label: opts.xUnit, labelSize: 14 },
        { label: unit, labelSize: 14, size: 56 },
      ],
      bands: bands,
      series: [
        isTime ? { label: "time (UTC)", value: (u, v) => (v === null ? "-" : utcText(v * 1000)) }
          : { label: opts.xUnit, value: (u, v) => (v === null ? "-" : xText(v)) },
        ...series.map((s, i) => ({
          label: s.name,
          stroke: COLORS[i % COLORS.length],
          width: 1.6,
          paths: paths,
          points: { show: s.points.length < 3 },
          value: (u, v) => `${fmt(v)} ${unit}`,
        })),
      ],
      plugins: [tooltipPlugin(unit, reporting ? t => (reporting.has(t) ? `meters reporting: ${reporting.get(t)}` : "") : null, xText)],
    }, data, host);
    // size to the card once it is in the document
    requestAnimationFrame(() => { const u = chart(); wrap._uplot = u; });
    return wrap;
  }

  window.plotSeries = plotSeries;
  window.utcText = utcText;
})();

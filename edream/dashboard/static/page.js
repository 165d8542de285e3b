// A drill-down page (/page/<kind>/<key>): its blocks from /api/page/<kind>/<key>, refreshed every 10 s.
(function () {
  "use strict";
  const { text, renderBlocks, getJSON } = window.edream;
  const main = document.getElementById("page");
  const title = document.getElementById("title");
  const api = "/api" + location.pathname;

  async function load() {
    try {
      const p = await getJSON(api);
      title.textContent = p.title;
      const frag = document.createDocumentFragment();
      frag.appendChild(text("h2", "", p.title));
      if (p.subtitle) frag.appendChild(text("p", "desc", p.subtitle));
      renderBlocks(p.blocks, frag);
      main.replaceChildren(frag);
      main.dataset.loaded = String(Number(main.dataset.loaded || 0) + 1);
    } catch (e) {
      main.replaceChildren(text("p", "note error", e.message));
      main.dataset.error = e.message;
    }
  }
  load();
  setInterval(load, 10000);
})();

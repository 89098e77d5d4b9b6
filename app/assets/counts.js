// Issue 22: the dashboard's cards and the menu's "Quarantine (N)" follow
// the server over SSE, so they never go stale after a release or a new
// quarantine. Loaded as a file: the CSP allows no inline script.
(() => {
  const targets = () => document.querySelectorAll("[data-count]");
  if (!targets().length || !window.EventSource) return;
  const show = (counts) => {
    targets().forEach((el) => {
      const v = counts[el.dataset.count];
      if (v === undefined) return;
      const text = el.dataset.countParen ? `(${v})` : String(v);
      if (el.textContent !== text) {
        el.textContent = text;
        el.dataset.countValue = String(v);
      }
    });
  };
  const es = new EventSource("/events");
  es.addEventListener("counts", (e) => {
    try { show(JSON.parse(e.data)); } catch (err) { console.warn("bad counts event", err); }
  });
})();

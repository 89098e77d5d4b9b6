// A purge job's progress, live over /events/purge/<id> (issue 17, item 5).
// Reloads once when the job is done, so the per-message table is final.
(() => {
  const card = document.getElementById("purge-progress");
  if (!card || !window.EventSource) return;
  const set = (id, text) => {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  };
  const wasDone = card.dataset.state === "done";
  const es = new EventSource(`/events/purge/${card.dataset.job}`);
  es.addEventListener("purge", (e) => {
    const j = JSON.parse(e.data);
    // data-state stays the server's: "done" there means the final render.
    card.dataset.live = j.state;
    set("purge-state", j.state);
    set("purge-mailboxes", `${j.mailboxes_done} / ${j.mailboxes_total}`);
    set("purge-moved", String(j.moved));
    set("purge-observed", String(j.observed));
    set("purge-failed", String(j.failed));
    const bar = document.getElementById("purge-bar");
    if (bar) {
      bar.max = Math.max(j.matched, 1);
      bar.value = j.moved + j.observed + j.failed;
    }
    if (j.state === "done") {
      es.close();
      if (!wasDone) window.location.reload();
    }
  });
  window.addEventListener("pagehide", () => es.close());
})();

// Backfill progress per folder, live over /events/backfill (issue 22, item 4).
(() => {
  const card = document.getElementById("backfill");
  if (!card || !window.EventSource) return;
  const body = card.querySelector("tbody");
  const es = new EventSource("/events/backfill");
  const cell = (text) => {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  };
  es.addEventListener("backfill", (e) => {
    const rows = JSON.parse(e.data);
    card.classList.toggle("hidden", rows.length === 0);
    body.replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.folder = `${r.account}/${r.mailbox}`;
      tr.dataset.done = String(r.done);
      tr.dataset.total = String(r.total);
      const bar = document.createElement("progress");
      bar.max = Math.max(r.total, 1);
      bar.value = r.done;
      const barCell = document.createElement("td");
      barCell.append(bar);
      tr.append(cell(`${r.account} / ${r.mailbox}`), barCell, cell(`${r.done} / ${r.total}`), cell(r.finished ? "done" : `${r.per_minute} per minute`));
      return tr;
    }));
  });
  window.addEventListener("pagehide", () => es.close());
})();

// Postern dashboard behaviour. Loaded as a file (the CSP allows no inline
// script); Alpine runs in its CSP build, so components are registered here.
// Untrusted text (senders, subjects) only ever reaches the DOM through
// textContent; HTML comes only from our own escaped server fragments.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

async function api(path, method = "POST", body) {
  const opts = { method, headers: { "X-CSRF-Token": csrf(), Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = {};
  try { data = await r.json(); } catch (_) { /* empty body */ }
  if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
  return data;
}

function toast(text, bad) {
  const t = document.getElementById("toast");
  if (!t) return;
  t.textContent = text;
  t.className = `fixed bottom-4 right-4 z-50 max-w-md ${bad ? "flash-err" : "flash-ok"}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = "fixed bottom-4 right-4 z-50 hidden max-w-md"; }, 6000);
}

const BADGES = { pass: "badge badge-pass", flag: "badge badge-flag", junk: "badge badge-flag", quarantine: "badge badge-quarantine", delete: "badge badge-delete" };

function describe(action, res) {
  if (res.release) return `${res.learn}; release: ${res.release.state} (${res.release.detail})`;
  if (res.state) return `${action}: ${res.state} (${res.detail})`;
  if (res.verdict) return `rescanned: ${res.verdict} (score ${Number(res.score).toFixed(1)}). ${res.note}`;
  return res.detail || "done";
}

// ---- message table: live rows ------------------------------------------------

// Bidi controls in a sender's text are shown as [U+XXXX], never obeyed
// (the server's templates do the same).
const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
const visible = (text) => `${text ?? ""}`.replace(BIDI, (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}]`);

function cell(text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.textContent = visible(text);
  return td;
}

function rowMatches(table, r) {
  const d = table.dataset;
  if (d.quarantined === "true" && !r.quarantined) return false;
  if (d.verdict && r.verdict !== d.verdict) return false;
  // The category filter is decided by the server's SQL; a live row cannot be
  // matched here exactly, so the page shows new rows only after a reload.
  if (d.category) return false;
  if (d.account && r.account !== d.account) return false;
  if (d.q) {
    const q = d.q.toLowerCase();
    if (!(`${r.from || ""}`.toLowerCase().includes(q) || `${r.subject || ""}`.toLowerCase().includes(q))) return false;
  }
  return true;
}

// Same columns and classes as templates/messages_table.html: at phone width
// the subject and verdict stay, the less important columns hide.
function buildRow(table, r) {
  const tr = document.createElement("tr");
  tr.dataset.id = r.id;
  tr.dataset.open = "";
  tr.className = "cursor-pointer";
  if (table.dataset.selectable === "true") {
    const td = document.createElement("td");
    const cb = document.createElement("input");
    cb.type = "checkbox";
    cb.value = r.id;
    cb.dataset.select = "";
    cb.setAttribute("aria-label", `Select message ${r.id}`);
    td.appendChild(cb);
    tr.appendChild(td);
  }
  tr.appendChild(cell((r.first_seen || "").replace("T", " ").slice(0, 19), "hidden sm:table-cell whitespace-nowrap text-gray-500"));
  tr.appendChild(cell(r.account, "hidden md:table-cell"));
  tr.appendChild(cell(r.from || "", "hidden sm:table-cell max-w-xs truncate"));
  const subject = cell(r.subject || "(no subject)", "max-w-[14rem] sm:max-w-md truncate");
  subject.dataset.subject = "";
  tr.appendChild(subject);
  const v = document.createElement("td");
  const b = document.createElement("span");
  b.className = BADGES[r.verdict] || "badge badge-muted";
  b.textContent = r.verdict || r.status;
  v.appendChild(b);
  tr.appendChild(v);
  const why = cell(r.category || "", "hidden sm:table-cell whitespace-nowrap");
  why.dataset.category = "";
  tr.appendChild(why);
  tr.appendChild(cell(r.score == null ? "" : Number(r.score).toFixed(1), "hidden md:table-cell text-right tabular-nums"));
  tr.appendChild(cell(r.disposition || r.location || r.mailbox, "hidden md:table-cell text-gray-600"));
  return tr;
}

function applyLive(table, r) {
  const body = table.tBodies[0];
  const old = body.querySelector(`tr[data-id="${CSS.escape(String(r.id))}"]`);
  const wanted = rowMatches(table, r);
  if (old && !wanted) { old.remove(); return; }
  if (!wanted) return;
  const fresh = buildRow(table, r);
  const checked = old?.querySelector("input[data-select]")?.checked;
  if (checked) fresh.querySelector("input[data-select]").checked = true;
  if (old) { old.replaceWith(fresh); return; }
  body.querySelector("tr[data-empty]")?.remove();
  // Newest first: insert before the first row with a smaller id.
  const after = Array.from(body.rows).find((tr) => Number(tr.dataset.id) < r.id);
  body.insertBefore(fresh, after || null);
  fresh.classList.add("row-new");
}

function connectLive() {
  const table = document.getElementById("messages");
  const dot = document.getElementById("live");
  const text = document.getElementById("live-text");
  if (!table || !window.EventSource) return;
  const es = new EventSource("/events");
  const state = (s, t) => { if (dot) dot.dataset.state = s; if (text) text.textContent = t; };
  es.onopen = () => state("open", "live");
  es.onerror = () => state("error", "reconnecting…");
  es.addEventListener("message", (e) => {
    try {
      const { row } = JSON.parse(e.data);
      applyLive(table, row);
      document.dispatchEvent(new CustomEvent("postern:rows"));
    } catch (err) { console.warn("bad event", err); }
  });
  es.addEventListener("lagged", () => window.location.reload());
}

// ---- drawer and per-message actions -----------------------------------------

async function openDrawer(id) {
  const d = document.getElementById("drawer");
  if (!d) return;
  const r = await fetch(`/messages/${encodeURIComponent(id)}/drawer`, { credentials: "same-origin" });
  if (!r.ok) { toast(`Cannot open message ${id}: HTTP ${r.status}`, true); return; }
  d.innerHTML = await r.text();
  d.dataset.id = id;
  d.classList.remove("hidden");
}

function closeDrawer() {
  const d = document.getElementById("drawer");
  if (d) { d.classList.add("hidden"); d.innerHTML = ""; delete d.dataset.id; }
}

async function runAction(btn) {
  const { action, id } = btn.dataset;
  const out = document.getElementById("action-result");
  btn.disabled = true;
  if (out) { out.className = "text-sm text-gray-600"; out.textContent = `${action}…`; }
  try {
    const res = await api(`/api/messages/${encodeURIComponent(id)}/${action}`);
    const msg = describe(action, res);
    toast(msg, res.state && res.state !== "done");
    await openDrawer(id);
    const o2 = document.getElementById("action-result");
    if (o2) { o2.className = "text-sm text-green-800"; o2.textContent = msg; }
  } catch (err) {
    if (out) { out.className = "text-sm text-red-700"; out.textContent = `${action} failed: ${err.message}`; }
    toast(`${action} failed: ${err.message}`, true);
  } finally {
    btn.disabled = false;
  }
}

document.addEventListener("click", (e) => {
  const confirmEl = e.target.closest("[data-confirm]");
  if (confirmEl && !window.confirm(confirmEl.dataset.confirm)) { e.preventDefault(); e.stopPropagation(); return; }
  const act = e.target.closest("button[data-action]");
  if (act) { e.preventDefault(); runAction(act); return; }
  if (e.target.closest("[data-close]")) { closeDrawer(); return; }
  // Audit rows link to their message: the drawer where there is one.
  const link = e.target.closest("a[data-open-message]");
  if (link && document.getElementById("drawer")) { e.preventDefault(); openDrawer(link.dataset.openMessage); return; }
  const row = e.target.closest("tr[data-open]");
  if (row && !e.target.closest("input,a,button,label")) openDrawer(row.dataset.id);
});

document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeDrawer(); });

// `/?message=ID` (the audit log's links) opens that message's drawer.
document.addEventListener("DOMContentLoaded", () => {
  const id = new URLSearchParams(window.location.search).get("message");
  if (id && /^[0-9]+$/.test(id)) openDrawer(id);
});

document.addEventListener("change", (e) => {
  if (e.target.matches("input[data-select-all]")) {
    document.querySelectorAll("input[data-select]").forEach((cb) => { cb.checked = e.target.checked; });
  }
  if (e.target.matches("input[data-select],input[data-select-all]")) document.dispatchEvent(new CustomEvent("postern:rows"));
});

// ---- Alpine components --------------------------------------------------------

document.addEventListener("alpine:init", () => {
  window.Alpine.data("nav", () => ({
    open: false,
    toggle() { this.open = !this.open; },
    get menuClass() { return { hidden: !this.open, flex: this.open, "flex-col": this.open }; },
  }));

  window.Alpine.data("bulk", () => ({
    count: 0,
    busy: false,
    get none() { return this.count === 0 || this.busy; },
    init() {
      const recount = () => { this.count = document.querySelectorAll("input[data-select]:checked").length; };
      document.addEventListener("postern:rows", recount);
      this.$el.querySelectorAll("[data-bulk]").forEach((b) => b.addEventListener("click", () => this.run(b.dataset.bulk)));
    },
    async run(action) {
      const ids = Array.from(document.querySelectorAll("input[data-select]:checked")).map((cb) => cb.value);
      if (!ids.length) return;
      if (action === "delete" && !window.confirm(`Delete ${ids.length} message(s) from the mailbox for good? Postern keeps their EML copies.`)) return;
      this.busy = true;
      const bar = document.getElementById("bulk-progress");
      const text = document.getElementById("bulk-text");
      let ok = 0;
      const failed = [];
      for (const [i, id] of ids.entries()) {
        if (text) text.textContent = `${action} ${i + 1}/${ids.length}`;
        try {
          const res = await api(`/api/messages/${encodeURIComponent(id)}/${action}`);
          if (res.state && res.state !== "done") failed.push(`#${id}: ${res.state} (${res.detail})`); else ok += 1;
        } catch (err) {
          failed.push(`#${id}: ${err.message}`);
        }
        if (bar) bar.value = (i + 1) / ids.length;
      }
      this.busy = false;
      toast(`${action}: ${ok} done${failed.length ? `, ${failed.length} failed: ${failed.join("; ")}` : ""}`, failed.length > 0);
      document.querySelectorAll("input[data-select]:checked").forEach((cb) => { cb.checked = false; });
      const all = document.querySelector("input[data-select-all]");
      if (all) all.checked = false;
      this.count = 0;
    },
  }));
});

document.addEventListener("DOMContentLoaded", connectLive);

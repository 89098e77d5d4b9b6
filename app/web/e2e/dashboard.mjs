// Dashboard end-to-end flow in headless Chromium. Started by the Rust test
// app/tests/browser.rs, which provides BASE_URL (Postern), CONTROL_URL
// (delivers mail into Dovecot and lists folders) and ADMIN_PASSWORD.
// Fails (exit 1) on any broken step, any CSP violation or console error.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const BASE = process.env.BASE_URL;
const CONTROL = process.env.CONTROL_URL;
const PASSWORD = process.env.ADMIN_PASSWORD;
const ART = process.env.ARTIFACTS || "browser-artifacts";
mkdirSync(ART, { recursive: true });

const problems = [];
const step = (s) => console.log(`- ${s}`);

async function control(path, body) {
  const r = await fetch(`${CONTROL}${path}`, body ? { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {});
  if (!r.ok) throw new Error(`control ${path}: HTTP ${r.status}`);
  return r.json();
}

async function until(what, fn, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
  ],
});
const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
const page = await context.newPage();
page.on("console", (m) => {
  if (m.type() === "error" || /Content.Security.Policy/i.test(m.text())) problems.push(`console ${m.type()}: ${m.text()}`);
});
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`); });
page.on("dialog", (d) => d.accept());
let navigations = 0;
page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations += 1; });
const shot = (name) => page.screenshot({ path: join(ART, `${name}.png`), fullPage: true });

try {
  // 1. Log in.
  step("log in");
  await page.goto(`${BASE}/login`);
  await shot("01-login");
  await page.fill("#password", PASSWORD);
  await Promise.all([page.waitForURL(`${BASE}/`), page.click("button[type=submit]")]);
  await page.waitForSelector("#live[data-state=open]");
  await shot("02-dashboard");

  // 2. A GTUBE mail shows up in quarantine live, without a reload.
  step("GTUBE arrives live");
  await page.goto(`${BASE}/quarantine`);
  await page.waitForSelector("#live[data-state=open]");
  const before = navigations;
  const gtube = `GTUBE live ${Date.now()}`;
  await control("/deliver", { kind: "gtube", subject: gtube });
  const row = page.locator("#messages tbody tr", { hasText: gtube });
  await row.waitFor({ timeout: 60000 });
  if (navigations !== before) throw new Error("the page reloaded; the row must arrive over SSE");
  await shot("03-quarantine-live-row");

  // 3. Preview, then release; Dovecot has it back in INBOX and it stays.
  step("preview and release");
  await row.locator("td").nth(4).click();
  await page.waitForSelector("#drawer:not(.hidden) iframe");
  const frame = page.frameLocator("#drawer iframe");
  await frame.locator("body").waitFor();
  await shot("04-drawer-preview");
  await page.click("#drawer button[data-action=release]");
  await page.waitForFunction(() => /done/.test(document.getElementById("action-result")?.textContent || ""), null, { timeout: 30000 });
  await shot("05-released");
  const inInbox = async () => (await control("/folder/INBOX")).ids.some((id) => id.includes("browser.test"));
  await until("released mail in INBOX", inInbox);
  await new Promise((r) => setTimeout(r, 3000));
  const q = await control("/folder/Quarantine");
  const held = await control("/folder/Postern-Held");
  const inbox = await control("/folder/INBOX");
  if (inbox.ids.length !== 1) throw new Error(`INBOX should hold the released mail only: ${JSON.stringify(inbox)}`);
  if (q.ids.length + held.ids.length !== 0) throw new Error(`released mail came back to quarantine: ${JSON.stringify([q, held])}`);
  await page.click("#drawer [data-close]");

  // 6. A mail full of XSS payloads runs nothing, in the list or the preview.
  step("XSS mail previewed");
  const xss = `XSS <img src=x onerror="window.__pwned=9"> ${Date.now()}`;
  await control("/deliver", { kind: "xss", subject: xss });
  const xrow = page.locator("#messages tbody tr", { hasText: "XSS <img" });
  await xrow.waitFor({ timeout: 60000 });
  await xrow.locator("td").nth(4).click();
  await page.waitForSelector("#drawer:not(.hidden) iframe");
  await page.frameLocator("#drawer iframe").locator("body", { hasText: "Invoice attached" }).waitFor();
  await page.waitForTimeout(1500);
  const pwned = await page.evaluate(() => window.__pwned);
  const title = await page.title();
  if (pwned !== undefined || /pwned/.test(title)) throw new Error(`an XSS payload ran: marker=${pwned} title=${title}`);
  const previewHtml = await page.frameLocator("#drawer iframe").locator("html").innerHTML();
  for (const bad of ["<script", "onerror", "onload", "javascript:", "tracker.example", "<form", "<object", "<iframe"]) {
    if (previewHtml.includes(bad)) throw new Error(`preview still contains ${bad}`);
  }
  await shot("06-xss-preview");
  await page.click("#drawer [data-close]");

  // 4a. Bulk delete.
  step("bulk delete");
  const bulk = [`Bulk A ${Date.now()}`, `Bulk B ${Date.now()}`];
  for (const s of bulk) await control("/deliver", { kind: "blocked", subject: s });
  for (const s of bulk) await page.locator("#messages tbody tr", { hasText: s }).waitFor({ timeout: 60000 });
  // Wait until both are really in the quarantine folder (the rows arrive at decision time).
  await until("bulk mail moved", async () => (await control("/folder/Quarantine")).ids.length >= 3);
  for (const s of bulk) await page.locator("#messages tbody tr", { hasText: s }).locator("input[data-select]").check();
  await page.waitForFunction(() => document.querySelector("[x-data=bulk] [x-text=count]")?.textContent === "2");
  await page.click("[data-bulk=delete]");
  await page.waitForFunction(() => /delete: 2 done/.test(document.getElementById("toast")?.textContent || ""), null, { timeout: 60000 });
  await shot("07-bulk-deleted");
  const q2 = await control("/folder/Quarantine");
  if (q2.ids.length !== 1) throw new Error(`after bulk delete only the XSS mail should remain: ${JSON.stringify(q2)}`);

  // 4b. Add a blocklist entry.
  step("blocklist entry");
  await page.goto(`${BASE}/lists`);
  await page.selectOption("#kind", "block");
  await page.fill("#pattern", "@bulk-spam.example");
  await page.fill("#reason", "browser test");
  await Promise.all([page.waitForURL(/ok=list_added/), page.click("form[action='/lists'] button[type=submit]")]);
  await page.locator("#list-entries", { hasText: "@bulk-spam.example" }).waitFor();
  await shot("08-lists");

  // 4c. Change a threshold.
  step("threshold");
  await page.goto(`${BASE}/settings`);
  await page.fill("#threshold_flag", "4.5");
  await Promise.all([page.waitForURL(/ok=settings/), page.click("#settings-form button[type=submit]")]);
  if ((await page.inputValue("#threshold_flag")) !== "4.5") throw new Error("threshold not saved");
  await page.locator("label[for=threshold_flag]", { hasText: "now 4.5" }).waitFor();
  await shot("09-settings");

  // 5. Every page renders without CSP violations; screenshots for review.
  step("every page");
  for (const [name, path] of [["10-dashboard", "/"], ["11-quarantine", "/quarantine"], ["12-stats", "/stats"], ["13-audit", "/audit"], ["14-accounts", "/accounts"], ["15-lists", "/lists"], ["16-settings", "/settings"]]) {
    await page.goto(`${BASE}${path}`);
    await page.waitForLoadState("networkidle").catch(() => {});
    await shot(name);
  }

  // 7. A digest link as its recipient meets it: no login, a confirmation
  // page (the GET changes nothing), then one click releases into INBOX.
  step("digest link");
  const dsub = `Digest GTUBE ${Date.now()}`;
  const { message_id: dmid } = await control("/deliver", { kind: "gtube", subject: dsub });
  const token = await until("quarantined mail with a digest link", async () => (await control("/digest-link", { subject: dsub })).token);
  const anon = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const dp = await anon.newPage();
  dp.on("console", (m) => { if (m.type() === "error" || /Content.Security.Policy/i.test(m.text())) problems.push(`digest console ${m.type()}: ${m.text()}`); });
  dp.on("pageerror", (e) => problems.push(`digest page error: ${e.message}`));
  await dp.goto(`${BASE}/digest/${token}`);
  await dp.locator("dd", { hasText: dsub }).waitFor();
  await dp.screenshot({ path: join(ART, "17-digest-confirm.png"), fullPage: true });
  if ((await control("/folder/INBOX")).ids.some((id) => id.includes(dmid))) throw new Error("opening the link already released the mail");
  await Promise.all([dp.waitForLoadState("load"), dp.getByRole("button", { name: /Release to INBOX/ }).click()]);
  await dp.locator("div.card[role=status]").waitFor();
  await dp.screenshot({ path: join(ART, "18-digest-done.png"), fullPage: true });
  await until("digest release in INBOX", async () => (await control("/folder/INBOX")).ids.some((id) => id.includes(dmid)));
  dp.removeAllListeners("console"); // the reused link answers 410 on purpose
  await dp.goto(`${BASE}/digest/${token}`).catch(() => {});
  if (!/already been used/.test(await dp.content())) throw new Error("a used digest link was not refused");
  await anon.close();
} catch (e) {
  problems.push(`step failed: ${e.stack || e.message}`);
  await shot("zz-failure").catch(() => {});
}

await browser.close();
if (problems.length) {
  console.error("PROBLEMS:\n" + problems.join("\n"));
  process.exit(1);
}
console.log("browser flow passed; screenshots in", ART);

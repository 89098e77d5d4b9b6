// Issue 22's acceptance in headless Chromium. Started by the Rust test
// app/tests/browser_console.rs, which provides BASE_URL (Postern), CONTROL_URL
// (delivers mail into Dovecot and lists folders), the admin's and an
// analyst's passwords, and the owner's IMAP login.
// Fails (exit 1) on any broken step, any CSP violation or console error,
// and any HTTP error the flow does not expect.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const BASE = process.env.BASE_URL;
const CONTROL = process.env.CONTROL_URL;
const ART = process.env.ARTIFACTS || "browser-artifacts";
mkdirSync(ART, { recursive: true });

const problems = [];
const expected = new Set(); // URLs whose error status the flow asks for
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

// A fresh context per person, each watched for CSP violations and errors.
async function person(name) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (/Content.Security.Policy/i.test(m.text())) problems.push(`${name} console: ${m.text()}`);
    else if (m.type() === "error" && !/status of 40[34]/.test(m.text())) problems.push(`${name} console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${name} page error: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400 && !expected.has(r.url())) problems.push(`${name}: HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  page.on("dialog", (d) => d.accept());
  const shot = (file) => page.screenshot({ path: join(ART, `${file}.png`), fullPage: true });
  return { context, page, shot };
}

async function dashboardLogin(page, user, password) {
  await page.goto(`${BASE}/login`);
  if (user) await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${BASE}/`), page.click("button[type=submit]")]);
}

let admin;
try {
  // 0. Backfill progress moves on the dashboard, live, while 500 old
  // messages are scanned; /health reports the same numbers.
  step("backfill progress");
  const total = Number(process.env.BACKFILL);
  admin = await person("admin");
  await dashboardLogin(admin.page, "", process.env.ADMIN_PASSWORD);
  await admin.page.evaluate(() => { window.__sameDocument = true; });
  const seen = new Set();
  let shotTaken = false;
  await until("backfill finished on the page", async () => {
    const row = admin.page.locator("#backfill tr[data-folder='bulk/INBOX']");
    if (!(await row.count())) return false;
    const done = Number(await row.getAttribute("data-done"));
    const of = Number(await row.getAttribute("data-total"));
    seen.add(done);
    if (!shotTaken && done > 0 && done < of) {
      shotTaken = true;
      await admin.shot("c00-backfill-progress");
    }
    return of === total && done === total;
  }, 180000);
  const between = [...seen].filter((n) => n > 0 && n < total);
  if (between.length < 2) throw new Error(`the progress did not move on the page: saw ${[...seen].sort((a, b) => a - b)}`);
  if (!(await admin.page.evaluate(() => window.__sameDocument))) throw new Error("the page reloaded; progress must arrive over SSE");
  const health = await (await admin.page.request.get(`${BASE}/health`)).json();
  const hb = (health.backfill || []).find((b) => b.account === "bulk");
  if (!hb || hb.done !== total || hb.total !== total) throw new Error(`/health backfill: ${JSON.stringify(health.backfill)}`);
  console.log(`  progress values seen on the page: ${between.length} between 0 and ${total}`);

  // 1. An analyst cannot open settings: no link, and the server refuses.
  step("analyst cannot open settings");
  const analyst = await person("analyst");
  await dashboardLogin(analyst.page, "ann", process.env.ANALYST_PASSWORD);
  if (await analyst.page.locator("#mainnav a[href='/settings']").count()) throw new Error("the analyst sees a Settings link");
  expected.add(`${BASE}/settings`);
  const resp = await analyst.page.goto(`${BASE}/settings`);
  if (resp.status() !== 403) throw new Error(`analyst got ${resp.status()} for /settings`);
  if (await analyst.page.locator("#settings-form").count()) throw new Error("the settings form rendered for an analyst");
  await analyst.shot("c01-analyst-settings-refused");
  expected.delete(`${BASE}/settings`);
  await analyst.context.close();

  // 2. Mail for the owner (spam and a phish) and for another account.
  step("deliver");
  const t = Date.now();
  const spam = `Owner spam ${t}`, phish = `Owner phish ${t}`, foreign = `Other account ${t}`;
  const inFolder = async (acct, folder, id) => (await control(`/folder/${acct}/${folder}`)).ids.some((x) => x.includes(id));
  const { message_id: spamId } = await control("/deliver", { to: "owner", kind: "gtube", subject: spam });
  const { message_id: phishId } = await control("/deliver", { to: "owner", kind: "phish", subject: phish });
  await control("/deliver", { to: "other", kind: "gtube", subject: foreign });
  // GTUBE is junk (Rspamd's reject, no threat evidence): it goes to Junk;
  // the phish goes to Quarantine. Both are the owner's to see.
  await until("owner spam in Junk", () => inFolder("owner", "Junk", spamId), 90000);
  await until("owner phish in quarantine", () => inFolder("owner", "Quarantine", phishId), 90000);
  await until("other mail in Junk", async () => (await control("/folder/other/Junk")).ids.length >= 1, 90000);

  // 3. The owner signs in with the IMAP password and sees only their own mail.
  step("owner signs in");
  const owner = await person("owner");
  await owner.page.goto(`${BASE}/my/login`);
  await owner.shot("c02-owner-login");
  await owner.page.fill("#login", process.env.OWNER_LOGIN);
  await owner.page.fill("#owner-password", process.env.OWNER_PASSWORD);
  await Promise.all([owner.page.waitForURL(`${BASE}/my`), owner.page.click("#owner-imap-form button[type=submit]")]);
  const rows = owner.page.locator("#owner-messages tbody tr");
  await rows.filter({ hasText: spam }).waitFor();
  await rows.filter({ hasText: phish }).waitFor();
  if (await rows.filter({ hasText: foreign }).count()) throw new Error("the owner sees another account's mail");
  await owner.shot("c03-owner-quarantine");
  // The owner's cookie opens no dashboard page.
  await owner.page.goto(`${BASE}/quarantine`);
  if (!owner.page.url().endsWith("/login")) throw new Error(`the owner reached the dashboard: ${owner.page.url()}`);
  await owner.page.goto(`${BASE}/my`);

  // 4. Spam: released at once, back in Dovecot's INBOX.
  step("owner releases spam");
  await Promise.all([owner.page.waitForURL(/\/my\?/), rows.filter({ hasText: spam }).locator("button").click()]);
  await owner.page.locator("#owner-ok").waitFor();
  await until("released spam in INBOX", () => inFolder("owner", "INBOX", spamId));

  // 5. Phishing: becomes a request; nothing moves.
  step("owner asks to release the phish");
  await Promise.all([owner.page.waitForURL(/\/my\?/), rows.filter({ hasText: phish }).locator("button").click()]);
  await owner.page.locator("#owner-ok", { hasText: "administrator must approve" }).waitFor();
  await rows.filter({ hasText: phish }).locator("text=release requested").waitFor();
  await owner.shot("c04-owner-request-filed");
  await new Promise((r) => setTimeout(r, 1500));
  if (await inFolder("owner", "INBOX", phishId)) throw new Error("the phish was released without approval");

  // 6. An admin approves; the phish reaches INBOX.
  step("admin approves");
  await admin.page.goto(`${BASE}/requests`);
  const req = admin.page.locator("#requests tbody tr", { hasText: phish });
  await req.waitFor();
  await admin.shot("c05-requests");
  await Promise.all([admin.page.waitForURL(/\/requests\?/), req.getByRole("button", { name: "Approve" }).click()]);
  await admin.page.locator("#requests-ok").waitFor();
  await until("approved phish in INBOX", () => inFolder("owner", "INBOX", phishId));
  await owner.page.goto(`${BASE}/my`);
  await owner.page.locator("#owner-requests tbody tr", { hasText: "approved" }).waitFor();
  await owner.context.close();

  // 7. A CSV export downloads with the page's current filters.
  step("CSV export with filters");
  const keep = `CSV keep ${t}`, drop = `CSV drop ${t}`;
  await control("/deliver", { to: "other", kind: "gtube", subject: keep });
  await control("/deliver", { to: "other", kind: "gtube", subject: drop });
  // Both scanned and listed: reloaded rather than waited for live, since a
  // decision made before the page's event stream connects is only in a
  // fresh render (the live path is covered by the dashboard test).
  await until("both CSV messages listed", async () => {
    await admin.page.goto(`${BASE}/quarantine`);
    const row = (s) => admin.page.locator("#messages tbody tr", { hasText: s }).count();
    return (await row(drop)) > 0 && (await row(keep)) > 0;
  }, 90000);
  await admin.page.fill("#q", keep);
  await admin.page.selectOption("#account", "other");
  await Promise.all([admin.page.waitForURL(/q=CSV/), admin.page.click("form[role=search] button[type=submit]")]);
  await admin.shot("c06-quarantine-filtered");
  const [download] = await Promise.all([admin.page.waitForEvent("download"), admin.page.click("#export-csv")]);
  const csv = readFileSync(await download.path(), "utf8");
  const lines = csv.trim().split(/\r?\n/);
  if (!lines[0].startsWith("id,")) throw new Error(`no CSV header: ${lines[0]}`);
  if (lines.length !== 2 || !csv.includes(keep) || csv.includes(drop) || csv.includes(spam)) {
    throw new Error(`the export ignores the filters:\n${csv}`);
  }
  if (!/\.csv$/.test(download.suggestedFilename())) throw new Error(`download named ${download.suggestedFilename()}`);
} catch (e) {
  problems.push(`step failed: ${e.stack || e.message}`);
  if (admin) await admin.shot("zz-console-failure").catch(() => {});
}

await browser.close();
if (problems.length) {
  console.error("PROBLEMS:\n" + problems.join("\n"));
  process.exit(1);
}
console.log("console acceptance passed; screenshots in", ART);

// Issue 17, item 5's acceptance in headless Chromium: search every mailbox,
// see the dry-run count per mailbox, purge, watch the progress, then find
// the audit rows. Started by app/tests/browser_purge.rs, which provides
// BASE_URL, the admin's and a viewer's passwords, the sender to search for
// and the two accounts that each hold one match.
// Fails (exit 1) on any broken step, CSP violation, console error or HTTP
// error the flow does not expect.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const BASE = process.env.BASE_URL;
const ART = process.env.ARTIFACTS || "browser-artifacts";
const SENDER = process.env.SENDER;
const ACCOUNTS = process.env.ACCOUNTS.split(",");
mkdirSync(ART, { recursive: true });

const problems = [];
const expected = new Set();
const step = (s) => console.log(`- ${s}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
  ],
});

async function person(name) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (/Content.Security.Policy/i.test(m.text())) problems.push(`${name} console: ${m.text()}`);
    else if (m.type() === "error" && !/status of 403/.test(m.text())) problems.push(`${name} console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${name} page error: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400 && !expected.has(r.url())) problems.push(`${name}: HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  const shot = (file) => page.screenshot({ path: join(ART, `${file}.png`), fullPage: true });
  return { context, page, shot };
}

async function login(page, user, password) {
  await page.goto(`${BASE}/login`);
  if (user) await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${BASE}/`), page.click("button[type=submit]")]);
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

let admin;
try {
  step("a viewer has no Search & purge");
  const viewer = await person("viewer");
  await login(viewer.page, "vic", process.env.VIEWER_PASSWORD);
  check((await viewer.page.locator("#mainnav a[href='/purge']").count()) === 0, "the viewer's menu offers Search & purge");
  expected.add(`${BASE}/purge`);
  const denied = await viewer.page.goto(`${BASE}/purge`);
  check(denied.status() === 403, `a viewer opened /purge: HTTP ${denied.status()}`);
  await viewer.context.close();

  step("search (dry run)");
  admin = await person("admin");
  await login(admin.page, "", process.env.ADMIN_PASSWORD);
  await Promise.all([admin.page.waitForURL(`${BASE}/purge`), admin.page.click("#mainnav a[href='/purge']")]);
  await admin.page.selectOption("#criterion", "sender");
  await admin.page.fill("#value", SENDER);
  await Promise.all([admin.page.waitForURL(/\/purge\/\d+$/), admin.page.click("#purge-search button[type=submit]")]);
  const job = admin.page.url().split("/").pop();

  step("dry-run count per mailbox");
  for (const a of ACCOUNTS) {
    const row = admin.page.locator(`#purge-counts tr[data-account='${a}'][data-mailbox='INBOX']`);
    check((await row.count()) === 1, `no dry-run row for ${a}/INBOX`);
    const n = await row.getAttribute("data-matches");
    check(n === "1", `${a}/INBOX: dry run counted ${n}, expected 1`);
  }
  const total = (await admin.page.textContent("#purge-matched")).trim();
  check(total === String(ACCOUNTS.length), `total ${total}`);
  check((await admin.page.locator("#purge-progress").count()) === 0, "a dry run shows no progress: nothing moves yet");
  await admin.shot("purge-dry-run");

  step("purge, with live progress");
  await Promise.all([admin.page.waitForURL(new RegExp(`/purge/${job}\\?`)), admin.page.click("#purge-start button[type=submit]")]);
  await admin.page.waitForSelector("#purge-progress");
  // The page follows the job over its event stream and reloads itself
  // once it is done; only that final render says data-state="done".
  await admin.page.waitForSelector("#purge-progress[data-state='done']", { timeout: 60000 });
  const moved = (await admin.page.textContent("#purge-moved")).trim();
  check(moved === String(ACCOUNTS.length), `moved ${moved}`);
  const mailboxes = (await admin.page.textContent("#purge-mailboxes")).replace(/\s+/g, " ").trim();
  check(mailboxes === `${ACCOUNTS.length} / ${ACCOUNTS.length}`, `mailboxes ${mailboxes}`);
  check((await admin.page.locator("#purge-items tr[data-state='moved']").count()) === ACCOUNTS.length, "items not all moved");
  check((await admin.page.locator("#purge-start").count()) === 0, "a finished job offers to purge again");
  await admin.shot("purge-done");

  step("the audit rows");
  await admin.page.goto(`${BASE}/audit?event=purged`);
  const rows = admin.page.locator("table tbody tr", { hasText: `purge job #${job}` });
  check((await rows.count()) === ACCOUNTS.length, `audit shows ${await rows.count()} purged rows`);
  for (const a of ACCOUNTS) {
    check((await rows.filter({ hasText: `${a}/INBOX` }).count()) === 1, `no purged audit row for ${a}`);
  }
  await admin.page.goto(`${BASE}/audit?event=purge_finished`);
  check((await admin.page.locator("table tbody tr", { hasText: `purge job #${job}` }).count()) === 1, "no purge_finished row");
  await admin.shot("purge-audit");
} catch (e) {
  problems.push(`flow: ${e.message}`);
  if (admin) await admin.page.screenshot({ path: join(ART, "purge-failure.png"), fullPage: true }).catch(() => {});
}
await browser.close();
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("purge acceptance: ok");

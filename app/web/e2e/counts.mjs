// Issue 22: the dashboard's cards and the menu's "Quarantine (N)" change
// without a reload after a new quarantine and after a release. Started by
// app/tests/browser_counts.rs (BASE_URL, CONTROL_URL, ADMIN_PASSWORD).
// Fails on any broken step, CSP violation, console error or HTTP error.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const BASE = process.env.BASE_URL;
const CONTROL = process.env.CONTROL_URL;
const ART = process.env.ARTIFACTS || "browser-artifacts";
mkdirSync(ART, { recursive: true });
const problems = [];
const step = (s) => console.log(`- ${s}`);

async function until(what, fn, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
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

try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (/Content.Security.Policy/i.test(m.text())) problems.push(`console: ${m.text()}`);
    else if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });

  step("login");
  await page.goto(`${BASE}/login`);
  await page.fill("#password", process.env.ADMIN_PASSWORD);
  await Promise.all([page.waitForURL(`${BASE}/`), page.click("button[type=submit]")]);
  await page.evaluate(() => { window.__sameDocument = true; });

  const card = (k) => page.locator(`main [data-count='${k}']`).innerText().then((t) => Number(t.trim()));
  const nav = () => page.locator("#nav-quarantine-count").innerText();
  // The menu's count arrives with the stream's first event.
  await until("the menu count", async () => /^\(\d+\)$/.test(await nav()));
  const before = { held: await card("in_quarantine"), today: await card("quarantine"), menu: await nav() };
  console.log(`  before: ${JSON.stringify(before)}`);

  step("a new quarantine raises the cards and the menu");
  const r = await fetch(`${CONTROL}/deliver`, { method: "POST" });
  const { subject, message_id: mid } = await r.json();
  const inFolder = async (f) => (await (await fetch(`${CONTROL}/folder/${f}`)).json()).ids.some((x) => x.includes(mid));
  await until("the phish in Quarantine", () => inFolder("Quarantine"), 90000);
  await until("in-quarantine card +1", async () => (await card("in_quarantine")) === before.held + 1, 90000);
  await until("quarantined-today card +1", async () => (await card("quarantine")) === before.today + 1);
  await until("menu count +1", async () => (await nav()) === `(${before.held + 1})`);
  await page.screenshot({ path: join(ART, "n01-after-quarantine.png"), fullPage: true });

  step("a release lowers them again");
  const row = page.locator("#messages tr[data-open]", { hasText: subject });
  await until("the row on the page", async () => (await row.count()) === 1);
  await row.click();
  await page.locator("#drawer button[data-action='release']").click();
  await until("released to INBOX", () => inFolder("INBOX"), 90000);
  await until("in-quarantine card back", async () => (await card("in_quarantine")) === before.held, 90000);
  await until("quarantined-today card back", async () => (await card("quarantine")) === before.today);
  await until("menu count back", async () => (await nav()) === `(${before.held})`);
  await page.screenshot({ path: join(ART, "n02-after-release.png"), fullPage: true });
  if (!(await page.evaluate(() => window.__sameDocument))) throw new Error("the page reloaded; counts must arrive over SSE");

  step("the menu count is on other pages too");
  await page.goto(`${BASE}/lists`);
  await until("the menu count on /lists", async () => (await nav()) === `(${before.held})`);

  step("settings tell where a secret comes from, and never show it");
  await page.goto(`${BASE}/settings`);
  const state = (k) => page.locator(`[data-secret-state='${k}']`).innerText();
  if (!/set \(environment\)/.test(await state("ntfy_token"))) throw new Error(`ntfy token: ${await state("ntfy_token")}`);
  if (!/not set/.test(await state("virustotal_key"))) throw new Error(`VirusTotal: ${await state("virustotal_key")}`);
  const vtForm = page.locator("form", { has: page.locator("#secret-virustotal_key") });
  await page.fill("#secret-virustotal_key", "vt-browser-key-0123456789");
  await Promise.all([page.waitForURL(/ok=secret/), vtForm.locator("button[type=submit]:not([name])").click()]);
  if (!/^set/.test((await state("virustotal_key")).trim())) throw new Error(`VirusTotal after save: ${await state("virustotal_key")}`);
  const html = await page.content();
  if (html.includes("vt-browser-key") || html.includes(process.env.ENV_TOKEN)) throw new Error("a secret was echoed into the page");
  await page.screenshot({ path: join(ART, "n03-settings-secrets.png"), fullPage: true });
  await Promise.all([page.waitForURL(/ok=secret_cleared/), page.locator("form", { has: page.locator("#secret-virustotal_key") }).locator("button[name=clear]").click()]);
  if (!/not set/.test(await state("virustotal_key"))) throw new Error(`VirusTotal after clear: ${await state("virustotal_key")}`);
  await context.close();
} catch (e) {
  problems.push(`step failed: ${e.stack || e}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("counts ok");

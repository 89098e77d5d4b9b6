// Layout checks for issue 22's cosmetics, started by app/tests/browser_layout.rs
// with BASE_URL, ADMIN_PASSWORD and SUBJECT (a quarantined message's subject).
// Exit 1 on any failed check, CSP violation or console error.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const BASE = process.env.BASE_URL;
const SUBJECT = process.env.SUBJECT;
const ART = process.env.ARTIFACTS || "browser-artifacts";
mkdirSync(ART, { recursive: true });

const problems = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
page.on("console", (m) => {
  if (m.type() === "error" || /Content.Security.Policy/i.test(m.text())) problems.push(`console ${m.type()}: ${m.text()}`);
});
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

try {
  await page.goto(`${BASE}/login`);
  await page.fill("#password", process.env.ADMIN_PASSWORD);
  await Promise.all([page.waitForURL(`${BASE}/`), page.click("button[type=submit]")]);

  // 1400 px: the audit card is not wider inside than outside.
  await page.goto(`${BASE}/audit`);
  const card = page.locator("#audit-card");
  await card.waitFor();
  const m = await card.evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth, page: document.documentElement.scrollWidth }));
  console.log(`- audit at 1400 px: card ${m.scroll}/${m.client}, page ${m.page}`);
  if (m.scroll > m.client) problems.push(`audit card overflows at 1400 px: scrollWidth ${m.scroll} > clientWidth ${m.client}`);
  if (m.page > 1400) problems.push(`the audit page scrolls sideways at 1400 px: ${m.page}`);
  const link = page.locator("a[data-audit-subject]", { hasText: SUBJECT }).first();
  if ((await link.count()) === 0) problems.push("no audit row names the message's subject");
  await page.screenshot({ path: join(ART, "layout-audit-1400.png"), fullPage: true });
  // The subject opens the message's drawer.
  await link.click();
  await page.waitForSelector("#drawer:not(.hidden) h2");
  const title = await page.locator("#drawer h2").innerText();
  if (!title.includes(SUBJECT)) problems.push(`the audit link opened ${title}`);

  // 390 px: the Quarantine table shows the subject, inside the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${BASE}/quarantine`);
  const cell = page.locator("#messages td[data-subject]", { hasText: SUBJECT }).first();
  await cell.waitFor();
  const box = await cell.boundingBox();
  const shown = await cell.isVisible();
  console.log(`- quarantine at 390 px: subject ${shown ? "visible" : "hidden"} at ${JSON.stringify(box)}`);
  if (!shown || !box || box.width < 40) problems.push(`subject not visible at 390 px: ${JSON.stringify(box)}`);
  else if (box.x < 0 || box.x + 40 > 390) problems.push(`subject off screen at 390 px: ${JSON.stringify(box)}`);
  for (const col of ["Account", "Score", "Where"]) {
    const th = page.locator("#messages th", { hasText: col }).first();
    if (await th.isVisible()) problems.push(`${col} column still shown at 390 px`);
  }
  await page.screenshot({ path: join(ART, "layout-quarantine-390.png"), fullPage: true });
} catch (e) {
  problems.push(`step failed: ${e.stack || e}`);
  await page.screenshot({ path: join(ART, "layout-failure.png"), fullPage: true }).catch(() => {});
}
await browser.close();
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("layout OK");

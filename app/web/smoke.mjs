// Toolchain smoke test: playwright-core driving Debian's /usr/bin/chromium, offline.
// Run: node smoke.mjs   (prints the <h1> text, exits non-zero on failure)
import { chromium } from 'playwright-core';

export const launchOptions = {
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // Every host name fails to resolve except loopback (MAP * also matches IP literals,
    // so 127.0.0.1 must be excluded too; see shared/test-peers/NOTES.md section 5).
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
  ],
};

const browser = await chromium.launch(launchOptions);
try {
  const page = await browser.newPage();
  await page.goto('data:text/html,<h1>ok</h1>');
  const text = await page.textContent('h1');
  console.log(text);
  console.error(`chromium ${browser.version()}`);
  if (text !== 'ok') process.exitCode = 1;
} finally {
  await browser.close();
}

// How fast a (large) report.html loads and answers in headless Chromium.
// Usage: node tests/browser/load.mjs DIR/report.html [--runs 3]
// with PLAYWRIGHT_DIR naming the folder where playwright-core is installed.
// Prints the file size, then per run: DOMContentLoaded and load (from
// navigation start, by the page's own Performance timing), first contentful
// paint, the time the findings filter takes to narrow the table, and the JS
// heap; it fails on a console error or a network request.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const file = resolve(args[0]);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
const require = createRequire(join(resolve(process.env.PLAYWRIGHT_DIR || '.'), 'node_modules', '.'));
const { chromium } = require('playwright-core');
const url = pathToFileURL(file).href;

console.log(`${file}: ${(statSync(file).size / 1e6).toFixed(1)} MB`);
let bad = 0;
for (let run = 1; run <= runs; run += 1) {
  const profile = mkdtempSync(join(tmpdir(), 'report-load-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
  });
  const requests = [];
  const errors = [];
  context.on('request', (r) => { if (r.url() !== url) { requests.push(r.url()); } });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error') { errors.push(m.text()); } });
  page.on('pageerror', (e) => errors.push(String(e)));
  const wall = Date.now();
  await page.goto(url, { waitUntil: 'load', timeout: 300000 });
  const wallMs = Date.now() - wall;
  const t = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return {
      dcl: Math.round(n.domContentLoadedEventEnd),
      load: Math.round(n.loadEventEnd),
      fcp: fcp ? Math.round(fcp.startTime) : null,
      rows: document.querySelectorAll('tr').length,
      heapMB: performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1e6) : null,
    };
  });
  const flag = await page.$eval('select[data-key="flag"] option:nth-child(2)', (o) => o.value).catch(() => null);
  let filterMs = null;
  if (flag) {
    filterMs = await page.evaluate(async (f) => {
      const s = document.querySelector('select[data-key="flag"]');
      const t0 = performance.now();
      s.value = f;
      s.dispatchEvent(new Event('change'));
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      return Math.round(performance.now() - t0);
    }, flag);
  }
  console.log(`run ${run}: DOMContentLoaded ${t.dcl} ms, load ${t.load} ms (wall ${wallMs} ms), first paint ${t.fcp} ms, ` +
    `filter ${filterMs} ms, ${t.rows} table rows, JS heap ${t.heapMB} MB`);
  if (errors.length || requests.length) {
    bad += 1;
    console.log(`FAIL: console errors ${JSON.stringify(errors)}, requests ${JSON.stringify(requests)}`);
  }
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(bad ? 1 : 0);

// The demo's report.html in a real browser (Debian's Chromium, driven by
// playwright-core): it runs the demo, opens the page headless from file://,
// and fails unless
//   - the page logs no console error and throws nothing,
//   - the browser makes no network request at all (only the file itself loads),
//   - every account id and every finding of report.json is on the page, each
//     finding with its flag, account, principal, detail and proving event ids,
//     and each proving event link leads to that event's row,
//   - the severity, flag and account filters narrow the findings, and sorting works,
//   - the planted hostile user agent is text: no dialog, no alert, no <img>, no
//     extra <script>, and its exact text is shown in the evidence table,
//   - the page prints to PDF.
// Usage: node tests/browser/report.mjs BINARY [--screenshot docs/report-demo.png]
// with PLAYWRIGHT_DIR naming the folder where playwright-core is installed and
// CHROMIUM the browser (default /usr/bin/chromium).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const HOSTILE = '<img src=x onerror=alert(1)><script>alert(2)</script>';
const args = process.argv.slice(2);
const bin = resolve(args[0] || 'target/debug/ssm-session-audit');
const shotAt = args.indexOf('--screenshot');
const screenshot = shotAt >= 0 ? resolve(args[shotAt + 1]) : null;
const require = createRequire(join(resolve(process.env.PLAYWRIGHT_DIR || '.'), 'node_modules', '.'));
const { chromium } = require('playwright-core');

let failures = 0;
let passed = 0;
function check(ok, what, detail) {
  if (ok) {
    passed += 1;
    console.log(`ok: ${what}`);
  } else {
    failures += 1;
    console.log(`FAIL: ${what}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
}

const work = mkdtempSync(join(tmpdir(), 'report-browser-'));
const out = join(work, 'demo');
const demo = spawnSync(bin, ['demo', '--output', out], {
  encoding: 'utf8',
  env: { ...process.env, NO_COLOR: '1' },
  timeout: 120000,
});
check(demo.status === 3, 'the demo runs (exit 3: incomplete on purpose)', `${demo.status} ${demo.stderr}`);
const page_path = join(out, 'report.html');
check(demo.stdout.includes(`open in a browser: ${page_path}`), 'the demo prints the page path', demo.stdout.slice(-400));
const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
const url = pathToFileURL(page_path).href;

const profile = mkdtempSync(join(tmpdir(), 'report-browser-profile-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1400, height: 1800 },
});
const requests = [];
const consoleErrors = [];
const pageErrors = [];
const dialogs = [];
context.on('request', (r) => requests.push(r.url()));
// Anything but the page itself is refused, and counted above.
await context.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
const page = context.pages()[0] || (await context.newPage());
page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') { consoleErrors.push(`${m.type()}: ${m.text()}`); } });
page.on('pageerror', (e) => pageErrors.push(String(e)));
page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
await page.addInitScript(() => {
  window.__alerts = [];
  window.__csp = [];
  for (const name of ['alert', 'confirm', 'prompt', 'print']) {
    window[name] = (...a) => { window.__alerts.push(`${name}(${a.join(',')})`); };
  }
  document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
});
const started = Date.now();
await page.goto(url, { waitUntil: 'load' });
await page.waitForTimeout(300);
const loadMs = Date.now() - started;

// --- every account and finding of report.json -------------------------------
const coverageText = await page.locator('#coverage-t').textContent();
const missingAccounts = report.accounts.map((a) => a.account_id).filter((id) => !coverageText.includes(id));
check(report.accounts.length > 0 && missingAccounts.length === 0, `all ${report.accounts.length} account ids are in the coverage matrix`, missingAccounts);
for (const a of report.accounts) {
  const row = page.locator('#coverage-t tbody tr', { hasText: a.account_id }).first();
  if (!(await row.isVisible())) { check(false, `account ${a.account_id} is visible`); }
}
const rows = await page.$$eval('#findings-t tbody tr', (trs) => trs.map((tr) => ({
  id: tr.id,
  text: tr.textContent,
  visible: tr.offsetParent !== null,
  links: Array.from(tr.querySelectorAll('a.ev')).map((a) => [a.getAttribute('href'), a.textContent]),
})));
check(rows.length === report.findings.length, `one row per finding (${report.findings.length})`, rows.length);
const unmatched = report.findings.filter((f) => !rows.some((r) => [f.flag, f.account_id, f.region, f.principal_arn, f.actor || '', f.detail, ...f.event_ids, f.session_id || '']
  .every((part) => r.text.includes(part))));
check(unmatched.length === 0, 'every finding is on the page with its flag, account, principal, actor, detail and event ids', unmatched);
check(rows.every((r) => r.visible), 'every finding row is visible');
let badLinks = [];
for (const r of rows) {
  for (const [href, text] of r.links) {
    const target = await page.$(`tr${href}`);
    const targetText = target ? await target.textContent() : '';
    if (!targetText.includes(text)) { badLinks.push([r.id, href, text]); }
  }
}
check(rows.some((r) => r.links.length > 0) && badLinks.length === 0, 'each proving event link leads to its event row', badLinks);
// Following a link shows and marks the event row.
await page.click(`#findings-t a.ev >> nth=0`);
check(await page.$eval('tr.hit', (tr) => tr.offsetParent !== null && tr.id.startsWith('e')).catch(() => false), 'following an event link shows that event');

// --- filters and sorting ------------------------------------------------------
const visibleFindings = () => page.$$eval('#findings-t tbody tr', (trs) => trs.filter((tr) => tr.offsetParent !== null).map((tr) => tr.id));
const total = (await visibleFindings()).length;
const flag = report.findings[0].flag;
const withFlag = report.findings.filter((f) => f.flag === flag).length;
await page.selectOption('select[data-key="flag"]', flag);
let shown = await visibleFindings();
check(shown.length === withFlag && shown.length < total, `the flag filter narrows ${total} findings to the ${withFlag} ${flag}`, shown.length);
check((await page.textContent('#findings-count')).includes(`${withFlag} of ${total}`), 'the counter says how many are shown');
await page.selectOption('select[data-key="flag"]', '');
await page.selectOption('select[data-key="sev"]', '4');
shown = await visibleFindings();
const critical = report.findings.filter((f) => f.severity === 'critical').length;
check(shown.length === critical && critical < total, `the severity filter shows the ${critical} critical`, shown.length);
await page.selectOption('select[data-key="sev"]', '');
const acct = report.findings[0].account_id;
await page.selectOption('select[data-key="acct"]', acct);
shown = await visibleFindings();
const inAcct = report.findings.filter((f) => f.account_id === acct).length;
check(shown.length === inAcct && inAcct < total, `the account filter shows the ${inAcct} of ${acct}`, shown.length);
await page.selectOption('select[data-key="acct"]', '');
await page.fill('input[data-filter-for="findings-t"]', 'travel.laptop');
shown = await visibleFindings();
check(shown.length >= 1 && shown.length < total, 'the search narrows the findings', shown.length);
await page.fill('input[data-filter-for="findings-t"]', '');
check((await visibleFindings()).length === total, 'clearing the filters shows every finding again');
const severities = () => page.$$eval('#findings-t tbody tr td:first-child', (tds) => tds.map((td) => Number(td.getAttribute('data-v'))));
let sev = await severities();
check(sev.every((v, i) => i === 0 || sev[i - 1] >= v), 'findings are worst first', sev);
await page.click('#findings-t th:first-child');
sev = await severities();
check(sev.every((v, i) => i === 0 || sev[i - 1] <= v) && sev[0] < sev[sev.length - 1], 'a click on Severity sorts ascending', sev);
await page.selectOption('select[data-key="status"]', 'failed');
const failedRows = await page.$$eval('#coverage-t tbody tr', (trs) => trs.filter((tr) => tr.offsetParent !== null).length);
check(failedRows === report.accounts.filter((a) => a.coverage.status === 'failed').length, 'the coverage filter shows the failed accounts', failedRows);
await page.selectOption('select[data-key="status"]', '');

// --- the timeline panel ----------------------------------------------------------
await page.click('#tl-t button.linkish >> nth=0');
check(await page.$eval('#tl-panel table', (t) => t.querySelectorAll('tbody tr').length > 0).catch(() => false), 'an account\'s sessions by day and hour open');

// --- the hostile user agent stays text ----------------------------------------------
const hostileCells = await page.$$eval('td, td div', (els, h) => els.filter((e) => e.textContent === h && e.offsetParent !== null).length, HOSTILE);
check(report.events.some((e) => e.user_agent === HOSTILE), 'the demo plants the hostile user agent');
check(hostileCells >= 1, 'the hostile user agent is shown as text', hostileCells);
check((await page.$$('img')).length === 0, 'no <img> element exists');
check((await page.$$('script')).length === 2, 'only the page\'s own two scripts exist', (await page.$$('script')).length);
const alerts = await page.evaluate(() => window.__alerts);
check(dialogs.length === 0 && alerts.length === 0, 'no dialog and no alert ran', { dialogs, alerts });
const csp = await page.evaluate(() => window.__csp);
check(csp.length === 0, 'no Content-Security-Policy violation', csp);

// --- printing ------------------------------------------------------------------------
const pdf = await page.pdf({ path: join(work, 'report.pdf'), format: 'A4', landscape: true, printBackground: true });
check(pdf.length > 10000, `the page prints to PDF (${pdf.length} bytes)`);

if (screenshot) {
  await page.goto(url, { waitUntil: 'load' });
  await page.screenshot({ path: screenshot, clip: { x: 0, y: 0, width: 1400, height: 1600 } });
  console.log(`screenshot: ${screenshot} (${statSync(screenshot).size} bytes)`);
}

check(consoleErrors.length === 0 && pageErrors.length === 0, 'no console error or warning, no page error', { consoleErrors, pageErrors });
const others = requests.filter((u) => u !== url);
check(others.length === 0, 'no network request (only the file itself)', others);
console.log(`report.html: ${statSync(page_path).size} bytes, loaded in ${loadMs} ms`);
await context.close();
rmSync(work, { recursive: true, force: true });
rmSync(profile, { recursive: true, force: true });
console.log(`${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);

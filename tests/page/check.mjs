// Drives Debian's chromium through craik's audit page (tests/it/page.rs):
// node check.mjs URL-WITH-TOKEN SCREENSHOT-DIR
// Prints one JSON object: what each view showed (DOM facts), every
// request the browser made, console messages and page errors, and each
// view's HTML. The Rust test asserts on it.
import { chromium } from 'playwright-core';

const [url, shots] = process.argv.slice(2);
const base = new URL(url).origin;
const out = { requests: [], console: [], pageerrors: [], views: {}, html: {} };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();
page.on('request', (r) => out.requests.push(r.url()));
page.on('console', (m) => out.console.push({ type: m.type(), text: m.text(), url: m.location().url }));
page.on('pageerror', (e) => out.pageerrors.push(String(e)));

const texts = (sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));
async function shot(name) {
  out.html[name] = await page.content();
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

try {
  // The printed address: its token becomes a cookie and leaves the URL.
  await page.goto(url);
  out.views.first = { url: page.url() };
  out.views.timeline = {
    rows: (await page.$$('#timeline tbody tr')).length,
    kinds: [...new Set(await page.$$eval('#timeline tbody tr', (rs) => rs.map((r) => r.dataset.kind)))],
    older: !!(await page.$('#older')),
  };
  await shot('timeline');

  // Filter by kind with the form.
  await page.selectOption('select[name=kind]', 'denial');
  await Promise.all([page.waitForNavigation(), page.click('form.filters button[type=submit]')]);
  out.views.by_kind = {
    url: page.url(),
    kinds: [...new Set(await page.$$eval('#timeline tbody tr', (rs) => rs.map((r) => r.dataset.kind)))],
  };
  await shot('timeline-denials');

  // A profile pattern, as in policies.
  await page.goto(`${base}/`);
  await page.fill('input[name=profile]', 'anthropic:prod-*');
  await Promise.all([page.waitForNavigation(), page.click('form.filters button[type=submit]')]);
  out.views.by_profile = {
    profiles: [...new Set(await page.$$eval('#timeline tbody tr td:nth-child(6)', (t) => t.map((e) => e.textContent.trim())))],
  };
  // A bad pattern: an error on the page, not a crash.
  await page.fill('input[name=profile]', 'anthropic:[x');
  const bad = await Promise.all([page.waitForNavigation(), page.click('form.filters button[type=submit]')]);
  out.views.bad_pattern = {
    status: bad[0] ? bad[0].status() : null,
    error: (await texts('.banner.bad')).join(' '),
  };

  // Older pages.
  await page.goto(`${base}/?limit=50`);
  const firstSeqs = await texts('#timeline a.receipt');
  await Promise.all([page.waitForNavigation(), page.click('#older')]);
  const olderSeqs = await texts('#timeline a.receipt');
  out.views.paging = { first: firstSeqs.map(Number), older: olderSeqs.map(Number) };

  // A call: from the timeline to its receipt, then along its links.
  await page.goto(`${base}/?kind=call.started&profile=anthropic:prod-eu`);
  await Promise.all([page.waitForNavigation(), page.click('#timeline a.receipt >> nth=0')]);
  const links = await page.$$eval('#links a.link', (as) => as.map((a) => ({ text: a.textContent.trim(), href: a.getAttribute('href'), label: a.parentElement.textContent.split(':')[0].trim() })));
  out.views.call = {
    title: await page.textContent('h1'),
    links,
    hash: await page.textContent('dl.fields dd.hash'),
  };
  await shot('receipt');
  for (const l of links) {
    await page.goto(`${base}${l.href}`);
    l.target = await page.textContent('h1');
  }

  await page.goto(`${base}/denials`);
  out.views.denials = {
    conditions: await texts('#denials code.condition'),
    counts: (await texts('#denials td.num')).map(Number),
  };
  await shot('denials');

  await page.goto(`${base}/approvals`);
  out.views.approvals = {
    sections: await texts('main h2'),
    used: (await page.$$('#approvals-used tbody tr')).length,
    pending: (await page.$$('#approvals-pending tbody tr')).length,
    error: (await texts('.banner.bad')).join(' '),
  };
  await shot('approvals');

  await page.goto(`${base}/usage`);
  out.views.usage = {
    charts: (await page.$$('figure.chart svg')).length,
    bars: (await page.$$('figure.chart rect')).length,
    models: await texts('#models td code'),
  };
  await shot('usage');

  await page.goto(`${base}/chain`);
  out.views.chain = {
    verify: await page.getAttribute('#verify', 'class'),
    text: await page.textContent('#verify'),
    checkpoint: !!(await page.$('#checkpoint')),
  };
  await shot('chain');

  // The export links carry the filter; fetched with the page's cookie.
  await page.goto(`${base}/?kind=denial`);
  const csvHref = await page.getAttribute('#export-csv', 'href');
  const csv = await context.request.get(`${base}${csvHref}`);
  const jsonl = await context.request.get(`${base}${await page.getAttribute('#export-jsonl', 'href')}`);
  out.views.export = {
    href: csvHref,
    csv_status: csv.status(),
    csv_lines: (await csv.text()).trim().split('\n'),
    jsonl_kinds: (await jsonl.text()).trim().split('\n').map((l) => JSON.parse(l).kind),
  };

  // Without the cookie: nothing.
  const anon = await browser.newContext();
  const r = await anon.request.get(`${base}/`);
  out.views.anonymous = { status: r.status() };
  await anon.close();
} catch (e) {
  out.error = String(e.stack || e);
}
await browser.close();
process.stdout.write(JSON.stringify(out));

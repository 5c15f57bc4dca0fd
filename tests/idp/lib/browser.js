// A tiny scripted "browser" for driving oidc-provider's devInteractions pages:
// a cookie jar, manual redirects, HTML form scraping.  No dependencies.
//
// TLS: if IDP_CA names a PEM file it is the only trusted CA for https
// requests; otherwise certificate verification is disabled for this process's
// own requests (equivalent to NODE_TLS_REJECT_UNAUTHORIZED=0, scoped here).

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

export class StepError extends Error {}

const ca = process.env.IDP_CA ? fs.readFileSync(process.env.IDP_CA) : undefined;

function decodeEntities(s) {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  if (!m) return undefined;
  return decodeEntities(m[1] ?? m[2] ?? m[3]);
}

/** All <form>s of a page: { id, action, method, fields: {name: value} } (hidden + valued inputs). */
export function parseForms(html, baseUrl) {
  const forms = [];
  const re = /<form\b([^>]*)>([\s\S]*?)<\/form>/gi;
  let m;
  while ((m = re.exec(html)) !== null) {
    const tag = `<form ${m[1]}>`;
    const fields = {};
    const inputRe = /<input\b[^>]*>/gi;
    let im;
    while ((im = inputRe.exec(m[2])) !== null) {
      const name = attr(im[0], 'name');
      if (!name) continue;
      const type = (attr(im[0], 'type') || 'text').toLowerCase();
      const value = attr(im[0], 'value');
      if (type === 'hidden' || value !== undefined) fields[name] = value ?? '';
    }
    const action = attr(tag, 'action');
    forms.push({
      id: attr(tag, 'id'),
      method: (attr(tag, 'method') || 'get').toLowerCase(),
      action: new URL(action ?? baseUrl, baseUrl).toString(),
      fields,
    });
  }
  return forms;
}

/** Text of an oidc-provider error page (renderError), or undefined. */
export function errorPage(html) {
  if (!/something went wrong/i.test(html)) return undefined;
  return decodeEntities(html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim());
}

export class Browser {
  constructor({ verbose = process.env.IDP_DEBUG === '1' } = {}) {
    this.jar = new Map(); // `${host}\0${path}\0${name}` -> { host, path, name, value }
    this.verbose = verbose;
  }

  log(msg) {
    if (this.verbose) process.stderr.write(`browser: ${msg}\n`);
  }

  cookieHeader(url) {
    const pairs = [];
    const now = Date.now();
    for (const [key, c] of this.jar) {
      if (c.expires !== undefined && c.expires <= now) { this.jar.delete(key); continue; }
      if (c.host !== url.hostname) continue;
      if (!(url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))) continue;
      pairs.push([c.path.length, `${c.name}=${c.value}`]);
    }
    pairs.sort((a, b) => b[0] - a[0]); // more specific paths first, as browsers do
    return pairs.map((p) => p[1]).join('; ');
  }

  storeCookies(url, setCookie) {
    for (const line of setCookie ?? []) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let cpath = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let expires;
      for (const a of attrs) {
        const [k, ...v] = a.split('=');
        const key = k.trim().toLowerCase();
        const val = v.join('=').trim();
        if (key === 'path') cpath = val || '/';
        else if (key === 'expires') expires = Date.parse(val);
        else if (key === 'max-age') expires = Date.now() + Number(val) * 1000;
      }
      const jarKey = `${url.hostname}\0${cpath}\0${name}`;
      if (expires !== undefined && expires <= Date.now()) this.jar.delete(jarKey);
      else this.jar.set(jarKey, { host: url.hostname, path: cpath, name, value, expires });
    }
  }

  /** One HTTP request, no redirect following. Returns { status, headers, body, url }. */
  request(method, urlStr, { form, headers = {} } = {}) {
    const url = new URL(urlStr);
    const lib = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
    if (!lib) return Promise.reject(new StepError(`refusing to fetch non-http URL ${urlStr}`));
    const body = form ? new URLSearchParams(form).toString() : undefined;
    const hdrs = { 'user-agent': 'craik-test-browser/1', accept: 'text/html,*/*', ...headers };
    const cookie = this.cookieHeader(url);
    if (cookie) hdrs.cookie = cookie;
    if (body !== undefined) {
      hdrs['content-type'] = 'application/x-www-form-urlencoded';
      hdrs['content-length'] = Buffer.byteLength(body);
    }
    const opts = { method, headers: hdrs };
    if (url.protocol === 'https:') {
      if (ca) opts.ca = ca; else opts.rejectUnauthorized = false;
    }
    this.log(`${method} ${url}${body ? ` [${body}]` : ''}`);
    return new Promise((resolve, reject) => {
      const req = lib.request(url, opts, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          this.storeCookies(url, res.headers['set-cookie']);
          const out = {
            status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), url: url.toString(),
          };
          this.log(`  -> ${out.status}${res.headers.location ? ` Location: ${res.headers.location}` : ''}`);
          resolve(out);
        });
        res.on('error', reject);
      });
      req.setTimeout(15000, () => req.destroy(new StepError(`timeout: ${method} ${url}`)));
      req.on('error', (err) => reject(new StepError(`${method} ${url}: ${err.message}`)));
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /**
   * Request and follow redirects while `stop(nextUrl)` is false.  Returns the
   * last response; if a redirect target satisfied `stop`, `res.stoppedAt` is
   * that URL (not fetched).
   */
  async go(method, urlStr, { form, stop = () => false, max = 20 } = {}) {
    let res = await this.request(method, urlStr, { form });
    for (let i = 0; i < max; i += 1) {
      if (![301, 302, 303, 307, 308].includes(res.status) || !res.headers.location) return res;
      const next = new URL(res.headers.location, res.url).toString();
      if (stop(next)) return { ...res, stoppedAt: next };
      const keep = res.status === 307 || res.status === 308;
      res = await this.request(keep ? method : 'GET', next, keep ? { form } : {});
    }
    throw new StepError(`too many redirects from ${urlStr}`);
  }

  /** Submit a parsed form, overriding/adding fields. */
  submit(formObj, extra = {}, opts = {}) {
    return this.go(formObj.method === 'post' ? 'POST' : 'GET', formObj.action, {
      ...opts, form: { ...formObj.fields, ...extra },
    });
  }
}

/**
 * Drive oidc-provider's devInteractions from `res` (a response already
 * fetched): log in as `user` (any password), consent, follow redirects.
 * Stops when a redirect target satisfies `stop`, or at a page that is neither
 * a login nor a consent form. If `deny`, aborts at the first interaction.
 */
export async function completeInteractions(browser, res, user, { stop = () => false, deny = false } = {}) {
  let logins = 0;
  for (let step = 0; step < 20; step += 1) {
    if (res.stoppedAt) return res;
    const err = errorPage(res.body);
    if (err) throw new StepError(`IdP error page at ${res.url} (HTTP ${res.status}): ${err}`);
    // oidc-provider's form_post / resume pages auto-submit a form; follow it.
    const forms = parseForms(res.body, res.url);
    const login = forms.find((f) => f.fields.prompt === 'login');
    const consent = forms.find((f) => f.fields.prompt === 'consent');
    const interactionMatch = res.url.match(/^(.*\/interaction\/[^/?#]+)/);
    if ((login || consent) && deny) {
      if (!interactionMatch) throw new StepError(`cannot find abort URL on ${res.url}`);
      res = await browser.go('GET', `${interactionMatch[1]}/abort`, { stop });
      deny = false;
      continue;
    }
    if (login) {
      logins += 1;
      if (logins > 1) throw new StepError(`login as ${JSON.stringify(user)} was rejected (unknown user?)`);
      res = await browser.submit(login, { login: user, password: 'x' }, { stop });
      continue;
    }
    if (consent) {
      res = await browser.submit(consent, {}, { stop });
      continue;
    }
    const autoPost = forms.find((f) => f.method === 'post' && /onload|\.submit\(\)/i.test(res.body));
    if (autoPost) {
      res = await browser.submit(autoPost, {}, { stop });
      continue;
    }
    return res;
  }
  throw new StepError('too many interaction steps');
}

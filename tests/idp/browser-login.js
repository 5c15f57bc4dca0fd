#!/usr/bin/env node
// Play the browser for an authorization-code (+ PKCE) login.
//
//   node browser-login.js <authorize_url> <user> [deny]
//
// GETs the authorize URL with a cookie jar, logs in as <user> (any password),
// consents, and follows redirects until one leaves the IdP (the client's
// redirect_uri, e.g. http://127.0.0.1:54321/callback?code=...&state=...).
// It then GETs that URL (the CLI's loopback listener) and prints the
// response body to stdout.  The callback URL itself goes to stderr as
// `callback: <url>`.
//
// With `deny`, the interaction is aborted instead, so the callback receives
// error=access_denied.
//
// Trusts IDP_CA (PEM) if set, otherwise skips TLS verification for its own
// requests.  Exit 0 if the callback answered 2xx; 1 on any failure to get
// there; 3 if the callback answered non-2xx (body still printed).

import { Browser, StepError, completeInteractions } from './lib/browser.js';

const [authorizeUrl, user, mode] = process.argv.slice(2);
if (!authorizeUrl || !user || (mode !== undefined && mode !== 'deny')) {
  process.stderr.write('usage: node browser-login.js <authorize_url> <user> [deny]\n');
  process.exit(64);
}

async function main() {
  const idpOrigin = new URL(authorizeUrl).origin;
  // Any redirect leaving the IdP's origin is the client's redirect_uri.
  const stop = (url) => new URL(url).origin !== idpOrigin;
  const browser = new Browser();

  let res = await browser.go('GET', authorizeUrl, { stop });
  res = await completeInteractions(browser, res, user, { stop, deny: mode === 'deny' });
  if (!res.stoppedAt) {
    throw new StepError(`flow ended at ${res.url} (HTTP ${res.status}) without redirecting to the client: `
      + `${res.body.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 400)}`);
  }
  process.stderr.write(`callback: ${res.stoppedAt}\n`);
  const cb = await browser.request('GET', res.stoppedAt);
  process.stdout.write(cb.body);
  if (cb.status < 200 || cb.status > 299) {
    process.stderr.write(`browser-login: callback answered HTTP ${cb.status}\n`);
    process.exit(3);
  }
}

main().catch((err) => {
  process.stderr.write(`browser-login: ${err instanceof StepError ? err.message : err.stack}\n`);
  process.exit(1);
});

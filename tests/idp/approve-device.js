#!/usr/bin/env node
// Approve (or deny) a pending device authorization as a given user.
//
//   node approve-device.js <issuer> <user_code> <user> [deny]
//
// HTTP sequence (cookie jar throughout):
//   1. GET  <issuer>/device                      -> user-code form, hidden `xsrf`
//   2. POST <issuer>/device  xsrf, user_code, confirm=yes   (deny: abort=yes)
//        deny: 200 page "The Sign-in request was interrupted"; done.
//        approve: 303 -> /interaction/<uid>
//   3. GET  /interaction/<uid>                   -> login form
//   4. POST /interaction/<uid>  prompt=login&login=<user>&password=x
//        303 -> /device/<uid> -> 303 -> /interaction/<uid2>
//   5. GET  /interaction/<uid2>                  -> consent form
//   6. POST /interaction/<uid2> prompt=consent
//        303 -> /device/<uid2> -> 200 "Sign-in Success"
//
// Trusts IDP_CA (PEM) if set, otherwise skips TLS verification for its own
// requests.  Exit 0 on success, 1 on failure (message on stderr).

import { Browser, StepError, completeInteractions, parseForms } from './lib/browser.js';

function usage() {
  process.stderr.write('usage: node approve-device.js <issuer> <user_code> <user> [deny]\n');
  process.exit(64);
}

const [issuer, userCode, user, mode] = process.argv.slice(2);
if (!issuer || !userCode || !user || (mode !== undefined && mode !== 'deny')) usage();
const deny = mode === 'deny';

function pageMessage(html) {
  const m = html.match(/<p class="red">([^<]*)<\/p>/);
  return m ? m[1] : undefined;
}

async function main() {
  const browser = new Browser();
  const base = issuer.replace(/\/+$/, '');

  let res = await browser.go('GET', `${base}/device`);
  if (res.status !== 200) throw new StepError(`GET /device: HTTP ${res.status}`);
  const input = parseForms(res.body, res.url).find((f) => 'xsrf' in f.fields);
  if (!input) throw new StepError('GET /device: no form with an xsrf field');

  const fields = { xsrf: input.fields.xsrf, user_code: userCode };
  if (deny) fields.abort = 'yes'; else fields.confirm = 'yes';
  res = await browser.go('POST', input.action, { form: fields });

  if (deny) {
    const msg = pageMessage(res.body);
    if (res.status === 200 && msg && /interrupted/i.test(msg)) {
      process.stderr.write(`denied device code ${userCode}\n`);
      return;
    }
    throw new StepError(`deny failed: HTTP ${res.status}${msg ? `: ${msg}` : ''}`);
  }

  // A re-rendered user-code page means the code was rejected.
  if (parseForms(res.body, res.url).some((f) => 'xsrf' in f.fields && !('prompt' in f.fields))) {
    throw new StepError(`user code ${userCode} rejected: ${pageMessage(res.body) || 'unknown reason'} `
      + '(not found, expired or already used)');
  }

  res = await completeInteractions(browser, res, user);
  if (res.status === 200 && /Sign-in Success/.test(res.body)) {
    process.stderr.write(`approved device code ${userCode} as ${user}\n`);
    return;
  }
  const msg = pageMessage(res.body);
  throw new StepError(`unexpected final page at ${res.url} (HTTP ${res.status}): `
    + `${msg || res.body.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300)}`);
}

main().catch((err) => {
  process.stderr.write(`approve-device: ${err instanceof StepError ? err.message : err.stack}\n`);
  process.exit(1);
});

#!/usr/bin/env node
// Self-test of the test IdP: runs every flow the Rust tests rely on against
// real server.js processes.  Needs `npm ci` done in this folder and openssl
// on PATH.  Prints one line per check and closes with "N passed, N failed".
//
//   node selftest.js

import { spawn, execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'craik-idp-selftest-'));
const certPath = path.join(dir, 'cert.pem');
const keyPath = path.join(dir, 'key.pem');
const jwksPath = path.join(dir, 'jwks.json');
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) { passed += 1; console.log(`ok   ${name}`); } else { failed += 1; console.log(`FAIL ${name} ${detail}`); }
}

execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
  '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=127.0.0.1',
  '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'basicConstraints=critical,CA:FALSE',
  '-addext', 'extendedKeyUsage=serverAuth'], { stdio: 'ignore' });
const ca = fs.readFileSync(certPath);

function startIdp(extraEnv = {}) {
  const child = spawn(process.execPath, [path.join(here, 'server.js')], {
    env: {
      ...process.env, IDP_PORT: '0', IDP_CERT: certPath, IDP_KEY: keyPath, IDP_JWKS_FILE: jwksPath, ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl !== -1) resolve({ child, ready: JSON.parse(buf.slice(0, nl)), rest: () => buf.slice(nl + 1) });
    });
    child.on('exit', (code) => reject(new Error(`idp exited ${code}: ${stderr}`)));
  });
}

function stopIdp(idp) {
  return new Promise((resolve) => {
    idp.child.removeAllListeners('exit');
    idp.child.on('exit', (code, sig) => resolve({ code, sig }));
    idp.child.kill('SIGTERM');
  });
}

function req(method, url, form) {
  const body = form ? new URLSearchParams(form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const r = https.request(url, {
      method,
      ca,
      headers: body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {},
    }, (res) => {
      let data = '';
      res.on('data', (d) => { data += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(data); } catch { json = undefined; }
        resolve({ status: res.statusCode, json, body: data });
      });
    });
    r.on('error', reject);
    if (body) r.write(body);
    r.end();
  });
}

function runScript(script, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(here, script), ...args], {
      env: { ...process.env, IDP_CA: certPath, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

const payload = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
const header = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString());
const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

async function deviceLogin(iss, clientId, scope, user) {
  const da = await req('POST', `${iss}/device/auth`, { client_id: clientId, scope });
  const ap = await runScript('approve-device.js', [iss, da.json.user_code, user]);
  const tok = await req('POST', `${iss}/token`, { client_id: clientId, grant_type: DEVICE_GRANT, device_code: da.json.device_code });
  return { da, ap, tok };
}

async function main() {
  // ------------------------------------------------------------ main server
  let idp = await startIdp({ IDP_DEVICE_INTERVAL: '1' });
  const iss = idp.ready.issuer;
  check('ready line', idp.ready.event === 'ready' && iss === `https://127.0.0.1:${idp.ready.port}` && idp.ready.port > 0, JSON.stringify(idp.ready));

  const disc = await req('GET', `${iss}/.well-known/openid-configuration`);
  check('discovery', disc.json?.issuer === iss
    && disc.json.device_authorization_endpoint === `${iss}/device/auth`
    && disc.json.revocation_endpoint === `${iss}/token/revocation`
    && disc.json.jwks_uri === `${iss}/jwks`
    && disc.json.token_endpoint === `${iss}/token`, disc.body);
  const jwks = await req('GET', `${iss}/jwks`);
  const fileKids = JSON.parse(fs.readFileSync(jwksPath, 'utf8')).keys.map((k) => k.kid);
  check('jwks served = file, public only', JSON.stringify(jwks.json.keys.map((k) => k.kid)) === JSON.stringify(fileKids)
    && jwks.json.keys.every((k) => !('d' in k)) && jwks.json.keys.map((k) => k.alg).join() === 'RS256,ES256', jwks.body);

  // device flow
  const da = await req('POST', `${iss}/device/auth`, { client_id: 'craik-cli', scope: 'openid profile email groups' });
  check('device auth response', da.status === 200 && da.json.interval === 1 && da.json.expires_in === 600
    && /^[A-Z]{4}-[A-Z]{4}$/.test(da.json.user_code) && da.json.verification_uri === `${iss}/device`, da.body);
  const pending = await req('POST', `${iss}/token`, { client_id: 'craik-cli', grant_type: DEVICE_GRANT, device_code: da.json.device_code });
  check('authorization_pending', pending.status === 400 && pending.json.error === 'authorization_pending', pending.body);
  const ap = await runScript('approve-device.js', [iss, da.json.user_code, 'alice']);
  check('approve-device.js alice', ap.code === 0, ap.err);
  const tok = await req('POST', `${iss}/token`, { client_id: 'craik-cli', grant_type: DEVICE_GRANT, device_code: da.json.device_code });
  const idt = tok.json?.id_token ? payload(tok.json.id_token) : {};
  check('device token: id_token claims', tok.status === 200 && idt.sub === 'alice' && idt.email === 'alice@example.com'
    && idt.email_verified === true && idt.name === 'Alice Admin' && JSON.stringify(idt.groups) === '["prod-deploy","devs"]'
    && idt.aud === 'craik-cli' && idt.iss === iss && idt.exp - idt.iat === 3600, tok.body);
  check('device token: RS256 with first kid', header(tok.json.id_token).alg === 'RS256' && header(tok.json.id_token).kid === fileKids[0]);
  check('device token: refresh_token, Bearer, expires_in', typeof tok.json.refresh_token === 'string'
    && tok.json.token_type === 'Bearer' && tok.json.expires_in === 3600 && tok.json.scope === 'openid profile email groups', tok.body);

  // refresh rotation
  const rt1 = tok.json.refresh_token;
  const r1 = await req('POST', `${iss}/token`, { client_id: 'craik-cli', grant_type: 'refresh_token', refresh_token: rt1 });
  check('refresh: rotated, new id_token', r1.status === 200 && r1.json.refresh_token && r1.json.refresh_token !== rt1
    && payload(r1.json.id_token).groups?.length === 2, r1.body);
  const r2 = await req('POST', `${iss}/token`, { client_id: 'craik-cli', grant_type: 'refresh_token', refresh_token: r1.json.refresh_token });
  check('refresh: second rotation', r2.status === 200 && r2.json.refresh_token !== r1.json.refresh_token, r2.body);
  const rv = await req('POST', `${iss}/token/revocation`, { client_id: 'craik-cli', token: r2.json.refresh_token, token_type_hint: 'refresh_token' });
  check('revocation 200 empty', rv.status === 200 && rv.body === '', rv.body);
  const r3 = await req('POST', `${iss}/token`, { client_id: 'craik-cli', grant_type: 'refresh_token', refresh_token: r2.json.refresh_token });
  check('refresh after revoke: invalid_grant', r3.status === 400 && r3.json.error === 'invalid_grant', r3.body);
  const ui = await req('GET', `${iss}/me`); // no token
  check('userinfo without token: 400/401', ui.status === 400 || ui.status === 401, `${ui.status}`);

  // replaying a redeemed device code is invalid_grant AND revokes its grant
  const dr = await deviceLogin(iss, 'craik-cli', 'openid', 'bob');
  const reuse = await req('POST', `${iss}/token`, { client_id: 'craik-cli', grant_type: DEVICE_GRANT, device_code: dr.da.json.device_code });
  const afterReuse = await req('POST', `${iss}/token`, { client_id: 'craik-cli', grant_type: 'refresh_token', refresh_token: dr.tok.json.refresh_token });
  check('device code replay: invalid_grant, grant revoked', dr.tok.status === 200 && reuse.json?.error === 'invalid_grant'
    && afterReuse.json?.error === 'invalid_grant', `${reuse.body} ${afterReuse.body}`);

  // reuse detection: replaying a rotated refresh token kills the grant
  const other = await deviceLogin(iss, 'craik-other', 'openid email', 'bob');
  const o1 = await req('POST', `${iss}/token`, { client_id: 'craik-other', grant_type: 'refresh_token', refresh_token: other.tok.json.refresh_token });
  const oReplay = await req('POST', `${iss}/token`, { client_id: 'craik-other', grant_type: 'refresh_token', refresh_token: other.tok.json.refresh_token });
  const oAfter = await req('POST', `${iss}/token`, { client_id: 'craik-other', grant_type: 'refresh_token', refresh_token: o1.json.refresh_token });
  check('refresh replay revokes grant', payload(other.tok.json.id_token).aud === 'craik-other' && o1.status === 200
    && oReplay.json.error === 'invalid_grant' && oAfter.json.error === 'invalid_grant', `${oReplay.body} ${oAfter.body}`);
  const wrongClient = await req('POST', `${iss}/token`, { client_id: 'craik-cli', grant_type: 'refresh_token', refresh_token: (await deviceLogin(iss, 'craik-other', 'openid', 'bob')).tok.json.refresh_token });
  check('refresh with another client: invalid_grant', wrongClient.json?.error === 'invalid_grant', wrongClient.body);

  // other users / clients
  const dave = await deviceLogin(iss, 'craik-cli', 'openid profile email groups', 'dave');
  check('dave: empty groups', JSON.stringify(payload(dave.tok.json.id_token).groups) === '[]', dave.tok.body);
  const carol = await deviceLogin(iss, 'craik-cli', 'openid email groups', 'carol');
  check('carol: groups, no name without profile', JSON.stringify(payload(carol.tok.json.id_token).groups) === '["approvers","devs"]'
    && !('name' in payload(carol.tok.json.id_token)), carol.tok.body);
  const es = await deviceLogin(iss, 'craik-es', 'openid email', 'bob');
  check('craik-es: ES256 id_token', header(es.tok.json.id_token).alg === 'ES256' && header(es.tok.json.id_token).kid === fileKids[1]
    && payload(es.tok.json.id_token).email === 'bob@example.com' && !('groups' in payload(es.tok.json.id_token)), es.tok.body);

  // deny
  const dd = await req('POST', `${iss}/device/auth`, { client_id: 'craik-cli', scope: 'openid' });
  const deny = await runScript('approve-device.js', [iss, dd.json.user_code, 'bob', 'deny']);
  const dtok = await req('POST', `${iss}/token`, { client_id: 'craik-cli', grant_type: DEVICE_GRANT, device_code: dd.json.device_code });
  check('deny: access_denied', deny.code === 0 && dtok.status === 400 && dtok.json.error === 'access_denied', `${deny.err} ${dtok.body}`);

  // unknown user / bogus code
  const du = await req('POST', `${iss}/device/auth`, { client_id: 'craik-cli', scope: 'openid' });
  const unk = await runScript('approve-device.js', [iss, du.json.user_code, 'mallory']);
  check('unknown user rejected', unk.code !== 0 && /rejected/.test(unk.err), unk.err);
  const bogus = await runScript('approve-device.js', [iss, 'BBBB-CCCC', 'alice']);
  check('bogus user code rejected', bogus.code !== 0, bogus.err);

  // auth code + PKCE via browser-login.js against a loopback listener
  const hits = [];
  const cbServer = http.createServer((rq, rs) => { hits.push(rq.url); rs.end(`got ${rq.url}`); });
  await new Promise((r) => { cbServer.listen(0, '127.0.0.1', r); });
  const redirectUri = `http://127.0.0.1:${cbServer.address().port}/callback`;
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const authUrl = (extra) => `${iss}/auth?${new URLSearchParams({
    client_id: 'craik-cli', response_type: 'code', scope: 'openid profile email groups', redirect_uri: redirectUri,
    state: 'st8', nonce: 'nn8', code_challenge: challenge, code_challenge_method: 'S256', ...extra,
  })}`;
  const bl = await runScript('browser-login.js', [authUrl({}), 'carol']);
  const cbq = new URL(hits.at(-1) ?? '/', 'http://x').searchParams;
  check('browser-login.js: callback with code+state+iss', bl.code === 0 && bl.out.startsWith('got /callback?')
    && cbq.get('code') && cbq.get('state') === 'st8' && cbq.get('iss') === iss, `${bl.code} ${bl.err}`);
  const badPkce = await req('POST', `${iss}/token`, {
    client_id: 'craik-cli', grant_type: 'authorization_code', code: cbq.get('code'), redirect_uri: redirectUri, code_verifier: `${verifier}x`,
  });
  check('auth code: wrong verifier invalid_grant', badPkce.json?.error === 'invalid_grant', badPkce.body);
  const ac = await req('POST', `${iss}/token`, {
    client_id: 'craik-cli', grant_type: 'authorization_code', code: cbq.get('code'), redirect_uri: redirectUri, code_verifier: verifier,
  });
  const acIdt = ac.json?.id_token ? payload(ac.json.id_token) : {};
  check('auth code: tokens', ac.status === 200 && acIdt.sub === 'carol' && acIdt.nonce === 'nn8' && ac.json.refresh_token, ac.body);
  const noPkce = await runScript('browser-login.js', [authUrl({ code_challenge: '', code_challenge_method: '' }), 'alice']);
  check('auth code: PKCE required', noPkce.code === 0 && /error=invalid_request/.test(noPkce.out) && /PKCE/.test(noPkce.out), noPkce.out);
  const denied = await runScript('browser-login.js', [authUrl({}), 'alice', 'deny']);
  check('auth code: deny -> access_denied', denied.code === 0 && /error=access_denied/.test(denied.out) && /state=st8/.test(denied.out), denied.out);
  const badRedirect = await runScript('browser-login.js', [authUrl({ redirect_uri: redirectUri.replace('/callback', '/evil') }), 'alice']);
  check('auth code: unregistered redirect path refused', badRedirect.code === 1 && /invalid_redirect_uri/.test(badRedirect.err), badRedirect.err);
  cbServer.close();

  const stopped = await stopIdp(idp);
  check('SIGTERM exit 0', stopped.code === 0, JSON.stringify(stopped));

  // ------------------------------------------------------------ expiry
  idp = await startIdp({ IDP_DEVICE_TTL: '2', IDP_ID_TOKEN_TTL: '5', IDP_ACCESS_TTL: '7' });
  const ex = await req('POST', `${idp.ready.issuer}/device/auth`, { client_id: 'craik-cli', scope: 'openid' });
  check('device TTL', ex.json.expires_in === 2 && ex.json.interval === undefined, ex.body);
  await sleep(3000);
  const exTok = await req('POST', `${idp.ready.issuer}/token`, { client_id: 'craik-cli', grant_type: DEVICE_GRANT, device_code: ex.json.device_code });
  check('expired_token', exTok.status === 400 && exTok.json.error === 'expired_token', exTok.body);
  const shortLived = await deviceLogin(idp.ready.issuer, 'craik-cli', 'openid', 'alice');
  const sl = payload(shortLived.tok.json.id_token);
  check('short TTLs', sl.exp - sl.iat === 5 && shortLived.tok.json.expires_in === 7, shortLived.tok.body);
  await stopIdp(idp);

  // ------------------------------------------------------------ rotation
  idp = await startIdp({ IDP_ROTATE: '1' });
  const newKids = JSON.parse(fs.readFileSync(jwksPath, 'utf8')).keys.map((k) => k.kid);
  const rj = await req('GET', `${idp.ready.issuer}/jwks`);
  check('IDP_ROTATE=1: new keys written and served', newKids.every((k) => !fileKids.includes(k))
    && JSON.stringify(rj.json.keys.map((k) => k.kid)) === JSON.stringify(newKids), rj.body);
  const rot = await deviceLogin(idp.ready.issuer, 'craik-cli', 'openid', 'alice');
  check('IDP_ROTATE=1: signs with new kid', header(rot.tok.json.id_token).kid === newKids[0], rot.tok.body);
  await stopIdp(idp);
  idp = await startIdp({});
  const kept = JSON.parse(fs.readFileSync(jwksPath, 'utf8')).keys.map((k) => k.kid);
  check('restart without IDP_ROTATE keeps keys', JSON.stringify(kept) === JSON.stringify(newKids));
  await stopIdp(idp);
}

try {
  await main();
} catch (err) {
  failed += 1;
  console.log(`FAIL uncaught: ${err.stack}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

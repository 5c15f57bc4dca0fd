// Test OpenID provider for craik's integration tests.
//
// Started by the Rust tests as `node server.js` (cwd = tests/idp) and
// configured entirely through environment variables; see README.md.
//
// stdout carries exactly one line, the ready line:
//   {"event":"ready","issuer":"https://127.0.0.1:PORT","port":PORT}
// Everything else (oidc-provider notices, debug logs, errors) goes to stderr.

import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';

// oidc-provider prints development notices with console.info (stdout).  Keep
// stdout reserved for the ready line.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const { default: Provider } = await import('oidc-provider');

function fail(msg) {
  process.stderr.write(`idp: ${msg}\n`);
  process.exit(2);
}

function envInt(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) fail(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

const DEBUG = process.env.IDP_DEBUG === '1';
const HOST = process.env.IDP_HOST || '127.0.0.1';
const PORT = envInt('IDP_PORT', 0);
const ACCESS_TTL = envInt('IDP_ACCESS_TTL', 3600);
const ID_TOKEN_TTL = envInt('IDP_ID_TOKEN_TTL', 3600);
const DEVICE_TTL = envInt('IDP_DEVICE_TTL', 600);
const REFRESH_TTL = envInt('IDP_REFRESH_TTL', 14 * 24 * 3600);
// RFC 8628 `interval`: oidc-provider does not return one by default (clients
// must then assume 5 s).  Set IDP_DEVICE_INTERVAL to add it to the response.
const DEVICE_INTERVAL = envInt('IDP_DEVICE_INTERVAL', 0);

const certPath = process.env.IDP_CERT;
const keyPath = process.env.IDP_KEY;
if (!certPath || !keyPath) fail('IDP_CERT and IDP_KEY (PEM file paths) are required');

// ---------------------------------------------------------------- signing keys

function randomKid() {
  return crypto.randomBytes(12).toString('base64url');
}

// The keys come from the openssl command, not crypto.generateKeyPairSync:
// Node.js 20's synchronous key generation can deadlock the process for good
// when a garbage collection runs inside it (seen here about once in 500
// starts: the main thread waits on a mutex in ~KeyGenJob and the ready line
// never comes).
function opensslKey(args) {
  let pem;
  try {
    pem = execFileSync('openssl', ['genpkey', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    fail(`openssl genpkey ${args.join(' ')} failed (install openssl): ${err.stderr || err.message}`);
  }
  return crypto.createPrivateKey(pem);
}

function generateJwks() {
  const rsa = opensslKey(['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']);
  const ec = opensslKey(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  return {
    keys: [
      // The first key of a type/alg is the one oidc-provider signs with, so
      // RS256 ID tokens (the default) are signed with the RSA key.
      {
        ...rsa.export({ format: 'jwk' }), kid: randomKid(), alg: 'RS256', use: 'sig',
      },
      {
        ...ec.export({ format: 'jwk' }), kid: randomKid(), alg: 'ES256', use: 'sig',
      },
    ],
  };
}

function loadOrCreateJwks() {
  const file = process.env.IDP_JWKS_FILE;
  const rotate = process.env.IDP_ROTATE === '1';
  if (!file) return generateJwks(); // ephemeral keys
  if (!rotate && fs.existsSync(file)) {
    const jwks = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) fail(`${file}: no "keys" array`);
    return jwks;
  }
  const jwks = generateJwks();
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  return jwks;
}

const jwks = loadOrCreateJwks();

// ------------------------------------------------------------------- accounts

const USERS = {
  alice: { email: 'alice@example.com', name: 'Alice Admin', groups: ['prod-deploy', 'devs'] },
  bob: { email: 'bob@example.com', name: 'Bob Builder', groups: ['devs'] },
  carol: { email: 'carol@example.com', name: 'Carol Approver', groups: ['approvers', 'devs'] },
  dave: { email: 'dave@example.com', name: 'Dave', groups: [] },
  // Claims a hostile or careless IdP could send: terminal control
  // characters, a forged second "issuer:" line.
  mallory: {
    email: 'm\u0007@x.example',
    name: 'Mal\u001b[2J\nissuer:  https://trusted.example',
    groups: ['a\rb', '\u009b31m'],
  },
};

async function findAccount(_ctx, id) {
  const user = Object.hasOwn(USERS, id) ? USERS[id] : undefined;
  if (!user) return undefined;
  return {
    accountId: id,
    async claims(_use, _scope, _claims, _rejected) {
      // oidc-provider filters these down to what the granted scopes allow.
      return {
        sub: id,
        email: user.email,
        email_verified: true,
        name: user.name,
        groups: [...user.groups],
      };
    },
  };
}

// -------------------------------------------------------------------- clients

function nativeClient(clientId, alg) {
  return {
    client_id: clientId,
    client_name: clientId,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: [
      'urn:ietf:params:oauth:grant-type:device_code',
      'refresh_token',
      'authorization_code',
    ],
    response_types: ['code'],
    // Native loopback redirect: any port is accepted at authorization time
    // (RFC 8252 section 7.3), e.g. http://127.0.0.1:54321/callback.
    redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback', 'http://[::1]/callback'],
    id_token_signed_response_alg: alg,
  };
}

const clients = [
  nativeClient('craik-cli', 'RS256'),
  nativeClient('craik-other', 'RS256'),
  nativeClient('craik-es', 'ES256'),
];

// ---------------------------------------------------------------------- setup

const configuration = {
  clients,
  jwks,
  findAccount,
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  pkce: { required: () => true }, // S256 is the only method oidc-provider 9 supports
  // Issue refresh tokens to any client allowed the refresh_token grant, even
  // without offline_access, and make them independent of the browser session.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  rotateRefreshToken: true,
  ttl: {
    AccessToken: () => ACCESS_TTL,
    IdToken: () => ID_TOKEN_TTL,
    DeviceCode: () => DEVICE_TTL,
    RefreshToken: () => REFRESH_TTL,
    AuthorizationCode: () => 60,
    Grant: () => 14 * 24 * 3600,
    Interaction: () => 3600,
    Session: () => 14 * 24 * 3600,
  },
  clientBasedCORS: () => true,
  renderError(ctx, out, _error) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><title>oops! something went wrong</title></head><body>
<h1>oops! something went wrong</h1>
${Object.entries(out).map(([k, v]) => `<pre><strong>${k}</strong>: ${String(v).replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`)}</pre>`).join('\n')}
</body></html>`;
  },
};

// The issuer contains the port, which is only known after listen() when
// IDP_PORT=0, so listen first and install the provider afterwards.
let handler = (_req, res) => { res.statusCode = 503; res.end('starting'); };
const server = https.createServer({
  cert: fs.readFileSync(certPath),
  key: fs.readFileSync(keyPath),
}, (req, res) => handler(req, res));

server.on('error', (err) => fail(`server error: ${err.stack || err}`));

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const issuer = process.env.IDP_ISSUER || `https://127.0.0.1:${port}`;

  const provider = new Provider(issuer, configuration);
  // TLS is terminated by this process, so ctx.secure is true; no proxy.
  provider.proxy = false;

  // devInteractions accepts any login name; an unknown one would otherwise
  // crash the flow later (HTTP 500).  Send the browser back to the login form
  // instead, like a real IdP rejecting bad credentials.
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path) && ctx.is('application/x-www-form-urlencoded')) {
      const chunks = [];
      for await (const chunk of ctx.req) chunks.push(chunk);
      const body = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
      if (body.prompt === 'login' && !Object.hasOwn(USERS, body.login ?? '')) {
        process.stderr.write(`idp: login rejected for unknown user ${JSON.stringify(body.login)}\n`);
        ctx.status = 303;
        ctx.redirect(ctx.path);
        return;
      }
      ctx.request.body = body; // oidc-provider falls back to the pre-parsed body
    }
    await next();
  });
  if (DEVICE_INTERVAL > 0) {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        ctx.body.interval = DEVICE_INTERVAL;
      }
    });
  }
  if (DEBUG) {
    provider.use(async (ctx, next) => {
      await next();
      process.stderr.write(`idp: ${ctx.method} ${ctx.originalUrl} -> ${ctx.status}\n`);
    });
  }

  provider.on('server_error', (_ctx, err) => process.stderr.write(`idp: server_error: ${err.stack || err}\n`));
  for (const ev of ['grant.error', 'authorization.error', 'revocation.error', 'introspection.error', 'userinfo.error', 'jwks.error', 'discovery.error', 'end_session.error', 'code_verification.error', 'device_resume.error']) {
    provider.on(ev, (_ctx, err) => {
      if (DEBUG) process.stderr.write(`idp: ${ev}: ${err.name}: ${err.message}${err.error_detail ? ` (${err.error_detail})` : ''}\n`);
    });
  }

  handler = provider.callback();

  process.stdout.write(`${JSON.stringify({ event: 'ready', issuer, port })}\n`);
});

let stopping = false;
function shutdown(sig) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`idp: ${sig}, shutting down\n`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

// Test fixtures: the Linear-compatible test server (out of process), file
// stores seeded on disk, stored-token test data and a capturing logger.
import { before, beforeEach, after } from 'node:test';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const pkgDir = path.resolve(here, '..');
export const repoRoot = path.resolve(pkgDir, '../..');
export const CLIENT_ID = 'test-client-id';
export const CLIENT_SECRET = 'test-client-secret';

const serverBin =
  process.env.LINEAR_OAUTH_TESTSERVER || path.join(repoRoot, 'target/debug/linear-oauth-testserver');

/** Starts the test server; resolves once it printed its `listening on` line. */
export async function startServer(args = []) {
  if (!fs.existsSync(serverBin)) {
    throw new Error(
      `test server not found at ${serverBin}: run \`cargo build -p linear-oauth-testserver\` or set LINEAR_OAUTH_TESTSERVER`,
    );
  }
  const child = spawn(serverBin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const base = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`test server exited with ${code}`)));
    lines.once('line', (line) => {
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
      if (m) resolve(m[1]);
      else reject(new Error(`unexpected first line from the test server: ${line}`));
    });
  });
  child.removeAllListeners('exit');
  lines.close();
  const admin = async (method, p, body) => {
    const res = await fetch(base + p, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    base,
    authorizeUrl: `${base}/oauth/authorize`,
    counters: () => admin('GET', '/_admin/counters'),
    faults: (patch) => admin('POST', '/_admin/faults', patch),
    reset: () => admin('POST', '/_admin/reset', {}),
    issue: (req = {}) => admin('POST', '/_admin/issue', req),
    refreshLive: async (token) =>
      (await admin('GET', `/_admin/refresh-token-status?token=${encodeURIComponent(token)}`)).live,
    /** Spends a refresh token directly, as a competing (uncoordinated) refresher would. */
    spend: async (refreshToken) => {
      const res = await fetch(`${base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
        }),
      });
      return { status: res.status, body: await res.json() };
    },
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill();
      }),
  };
}

const tmpDirs = [];

/** A fresh directory for a file store. */
/**
 * One test server for the calling test file, handed to `set` once started;
 * reset before each test (unless `reset: false`); stopped, and the stores
 * removed, after the file.
 */
export function useServer(set, { reset = true } = {}) {
  let server;
  before(async () => {
    server = await startServer();
    set(server);
  });
  if (reset) {
    beforeEach(async () => {
      await server.reset();
    });
  }
  after(async () => {
    await server.stop();
    cleanupStores();
  });
}

export function tmpStore() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lo-node-'));
  tmpDirs.push(dir);
  return dir;
}

export function cleanupStores() {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** The file store's name for a secret id: all but [A-Za-z0-9_-] percent-encoded. */
export function secretFile(dir, id) {
  let name = '';
  for (const b of Buffer.from(id, 'utf8')) {
    const c = String.fromCharCode(b);
    name += /[A-Za-z0-9_-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return path.join(dir, 'secrets', `${name}.json`);
}

export function writeSecret(dir, id, value) {
  fs.mkdirSync(path.join(dir, 'secrets'), { recursive: true, mode: 0o700 });
  fs.writeFileSync(secretFile(dir, id), value, { mode: 0o600 });
}

export function readSecret(dir, id) {
  return JSON.parse(fs.readFileSync(secretFile(dir, id), 'utf8'));
}

export function writeRow(dir, workspaceId, row) {
  const file = path.join(dir, 'registry.json');
  const rows = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  rows[workspaceId] = row;
  fs.writeFileSync(file, JSON.stringify(rows, null, 2), { mode: 0o600 });
}

/** An ISO-8601 UTC instant `secs` from now. */
export function isoIn(secs) {
  return new Date(Date.now() + secs * 1000).toISOString();
}

/** Stored-token JSON as the old tooling wrote it (test data). */
export function tokenJson({ access, refresh, expiresAt, workspaceId, slug }) {
  return JSON.stringify({
    access_token: access,
    refresh_token: refresh,
    expires_at: expiresAt,
    scope: 'read write',
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    workspace_id: workspaceId,
    workspace_slug: slug,
    installed_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    installed_by_platform_user_id: 'platform-user-1',
    team_hint: { kept: true },
  });
}

/** A workspace whose live server-side tokens are stored, expiring in `expiresInS`. */
export async function seed(server, dir, slug, expiresInS, status = 'active') {
  const issued = await server.issue({ client_id: CLIENT_ID, scope: 'read write', expires_in: 86399 });
  const workspaceId = `org-${slug}`;
  const secretId = `bgagent-linear-oauth-${slug}`;
  writeSecret(
    dir,
    secretId,
    tokenJson({ access: issued.access_token, refresh: issued.refresh_token, expiresAt: isoIn(expiresInS), workspaceId, slug }),
  );
  writeRow(dir, workspaceId, { workspace_slug: slug, oauth_secret_arn: secretId, status });
  return { workspaceId, secretId, slug, access: issued.access_token, refresh: issued.refresh_token };
}

/** Collects log records from the `logger` option. */
export function captureLogger() {
  const records = [];
  const logger = (record) => records.push(record);
  logger.records = records;
  logger.text = () => records.map((r) => JSON.stringify(r)).join('\n');
  return logger;
}

/** Options for a resolver on `dir` talking to `server`. */
export function options(server, dir, extra = {}) {
  return {
    store: `file:${dir}`,
    apiBase: server.base,
    authorizeUrl: server.authorizeUrl,
    httpTimeoutSeconds: 5,
    leaseWaitSeconds: 10,
    ...extra,
  };
}

export const sha = (s) => createHash('sha256').update(s).digest('hex').slice(0, 16);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until the JS logger's queued events have been delivered. */
export async function settleLogs() {
  await sleep(20);
}

/** Runs `node --input-type=module -e script` and returns its exit code, stdout and stderr. */
export function runNode(script, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: pkgDir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

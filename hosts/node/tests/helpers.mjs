// Test fixtures: the test harness (out of process: the Linear-compatible
// test server plus routes that seed and read stores through the host's own
// backends), file stores seeded through it, and a capturing logger.
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
  process.env.LINEAR_OAUTH_TESTHARNESS || path.join(repoRoot, 'target/debug/linear-oauth-testharness');

/** Starts the test harness; resolves once it printed its `listening on` line. */
export async function startServer(args = []) {
  if (!fs.existsSync(serverBin)) {
    throw new Error(
      `test harness not found at ${serverBin}: run \`cargo build -p linear-oauth-testharness\` or set LINEAR_OAUTH_TESTHARNESS`,
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
    /** Linear stops accepting this access token (its refresh token lives on): `/_admin/kill-access-token`. */
    killAccessToken: (token) => admin('POST', '/_admin/kill-access-token', { token }),
    refreshLive: async (token) =>
      (await admin('GET', `/_admin/refresh-token-status?token=${encodeURIComponent(token)}`)).live,
    /** A delivery signed as Linear signs it: `{body, signature, delivery_id, event}` (tests/server/src/webhook.rs). */
    webhook: (spec) => admin('POST', '/_admin/webhook', spec),
    /** `POST /_admin/seed` into the file store in `dir` (see tests/harness). */
    seed: (dir, request) => admin('POST', '/_admin/seed', { store: `file:${dir}`, ...request }),
    /** The stored secret `id` of the file store in `dir`, parsed; null when absent. */
    stored: async (dir, id) => {
      const q = new URLSearchParams({ store: `file:${dir}`, secret_id: id });
      const { value } = await admin('GET', `/_admin/stored?${q}`);
      return value === null ? null : JSON.parse(value);
    },
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

/** A fresh directory for a file store. */
export function tmpStore() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lo-node-'));
  tmpDirs.push(dir);
  return dir;
}

export function cleanupStores() {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/**
 * A registered workspace in the file store in `dir` whose stored token holds
 * a live pair minted at the server, expiring in `expiresInS`; `extra` adds
 * to the seed request (`fields`, `status`, ...).
 */
export async function seed(server, dir, slug, expiresInS, extra = {}) {
  const got = await server.seed(dir, { slug, expires_in_s: expiresInS, ...extra });
  return { workspaceId: got.workspace_id, secretId: got.secret_id, slug, access: got.access_token, refresh: got.refresh_token };
}

/** Stores `value` exactly under `id` in the file store in `dir`, with no registry row. */
export async function putSecret(server, dir, id, value) {
  await server.seed(dir, { secret_id: id, value });
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

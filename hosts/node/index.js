'use strict';
// linear-oauth for Node.js.
//
// A thin wrapper over the native addon (src/lib.rs), which is itself a thin
// layer over linear-oauth-host: no protocol logic and no stored-token schema
// live here. This file adds what is idiomatic only in JavaScript: the error
// and token classes, logger plumbing, argument checks, the cached fast path
// (an already-resolved Promise, no thread hop) and the compatibility helpers
// of the old TypeScript module.

const { inspect } = require('node:util');

const binding = require('./native.js').loadNative();

// From the host's error table, so a new kind needs no edit here.
const ERROR_CODES = Object.freeze(binding.errorCodes());

/** Every failure this module reports; `code` is stable, `message` never holds a secret. */
class LinearOAuthError extends Error {
  constructor(code, message, details) {
    super(message);
    this.name = 'LinearOAuthError';
    this.code = code;
    const d = details || {};
    if (code === 'INVALID_STORED_TOKEN') {
      this.invalidFields = Array.isArray(d.invalidFields) ? d.invalidFields : [];
      this.missingFields = this.invalidFields; // the old name
    } else if (code === 'TOKEN_ENDPOINT' || code === 'AUTHORIZATION') {
      this.status = d.status == null ? null : d.status;
      this.error = d.error == null ? null : d.error;
      this.description = d.description == null ? null : d.description;
      if (code === 'TOKEN_ENDPOINT') this.retryAfter = d.retryAfter == null ? null : d.retryAfter;
    }
  }
}

// The native side builds errors through this: the host's attributes of the
// error (`Error::attrs`, JSON with camelCase names) become its properties.
function makeError(code, message, attributes) {
  return Object.assign(new LinearOAuthError(code, message), JSON.parse(attributes));
}

function invalidInput(message) {
  return new LinearOAuthError('INVALID_INPUT', message);
}

const REDACTED = '[redacted]';

let fresh; // (token, generation) => whether a resolver's map may serve it now; set below
let serialOf; // (token) => the host's serial of the token it shows; set below
let stamp; // (token, generation) => marks it checked against the host at that generation; set below

/**
 * A token the caller may use now. `accessToken` is a getter over a private
 * field: it is not an own property, so `util.inspect`, `console.log`,
 * `JSON.stringify`, spreading and `Object.keys` never reveal it.
 */
class LinearOAuthToken {
  #accessToken;
  // Unix ms until which the resolver that made it may serve it from its own
  // map: the sooner of the host's serve window and refresh-ahead.
  #until;
  // The host's serial of this token, and the host cache's generation at which
  // it was last known to be the token the host serves (see `Resolver`).
  #serial;
  #stamp;

  // `f`: the native side's token fields (src/tokens.rs).
  constructor(f, generation) {
    const v = Array.isArray(f) ? f : [];
    this.#accessToken = v[0];
    this.#until = typeof v[6] === 'number' ? v[6] : 0;
    this.#serial = typeof v[7] === 'number' ? v[7] : 0;
    this.#stamp = generation;
    this.scope = v[1];
    this.workspaceSlug = v[2];
    this.secretId = v[3];
    this.expiresAt = v[4];
    this.workspaceId = v[5];
    Object.freeze(this);
  }

  get accessToken() {
    return this.#accessToken;
  }

  /** `expiresAt` as a `Date` (a new one each time: a Date is mutable, the token is frozen). */
  get expiresAtDate() {
    return new Date(this.expiresAt);
  }

  toJSON() {
    return {
      scope: this.scope,
      workspaceSlug: this.workspaceSlug,
      secretId: this.secretId,
      expiresAt: this.expiresAt,
      workspaceId: this.workspaceId,
    };
  }

  [inspect.custom](depth, options, inspectFn) {
    const shown = { accessToken: REDACTED, ...this.toJSON() };
    return `LinearOAuthToken ${(inspectFn || inspect)(shown, options)}`;
  }

  static {
    // Private fields stay writable on a frozen object: the stamp moves.
    fresh = (t, generation) => t.#stamp === generation && Date.now() < t.#until;
    serialOf = (t) => t.#serial;
    stamp = (t, generation) => {
      t.#stamp = generation;
    };
  }
}

// ---------------------------------------------------------------- logging

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

function reportLoggerFailure(e) {
  const message = e && typeof e.message === 'string' ? e.message : String(e);
  process.stderr.write(
    JSON.stringify({
      level: 'error',
      message: 'linear-oauth: the logger threw; event dropped',
      error: message,
      time: new Date().toISOString(),
    }) + '\n',
  );
}

// The native sink hands over one JSON record per event (already filtered by
// logLevel); this turns it into a call on the user's logger.
function logBridge(logger) {
  if (logger === undefined || logger === null) return undefined;
  if (typeof logger === 'function') {
    return (line) => {
      try {
        logger(JSON.parse(line));
      } catch (e) {
        reportLoggerFailure(e);
      }
    };
  }
  if (typeof logger === 'object' && ['info', 'warn', 'error', 'debug'].some((m) => typeof logger[m] === 'function')) {
    return (line) => {
      try {
        const { level, message, time: _time, ...fields } = JSON.parse(line);
        let method = logger[level];
        if (typeof method !== 'function' && level === 'trace') method = logger.debug;
        if (typeof method !== 'function') method = logger.log || logger.info;
        if (typeof method === 'function') method.call(logger, message, fields);
      } catch (e) {
        reportLoggerFailure(e);
      }
    };
  }
  throw invalidInput('logger must be a function or an object with info/warn/error/debug methods');
}

// ---------------------------------------------------------------- options

// The host's options table, as Node spells it: name -> 'text' | 'seconds' | 'bytes' | 'count' | 'flag'.
const SETTINGS = new Map(binding.settings().map(([name, kind]) => [name, kind]));
const KNOWN_OPTIONS = new Set([...SETTINGS.keys(), 'logLevel', 'logger']);
const WANTED = {
  text: 'a string',
  seconds: 'a number of seconds',
  bytes: 'a number of bytes',
  count: 'a whole number',
  flag: 'a boolean',
};
const JS_TYPE = { text: 'string', flag: 'boolean' };

function nativeOptions(options) {
  if (options === undefined || options === null) return [{}, undefined];
  if (typeof options !== 'object' || Array.isArray(options)) throw invalidInput('options must be an object');
  const out = {};
  for (const key of Object.keys(options)) {
    const value = options[key];
    if (!KNOWN_OPTIONS.has(key)) throw invalidInput(`unknown option ${JSON.stringify(key)}`);
    if (value === undefined || key === 'logger') continue;
    const kind = SETTINGS.get(key);
    if (kind !== undefined) {
      if (typeof value !== (JS_TYPE[kind] ?? 'number')) throw invalidInput(`${key} must be ${WANTED[kind]}`);
    } else if (key === 'logLevel' && !LEVELS.includes(value)) {
      throw invalidInput(`logLevel must be one of ${LEVELS.join(', ')}`);
    }
    out[key] = value;
  }
  return [out, logBridge(options.logger)];
}

// ---------------------------------------------------------------- resolver

const FROM_ENV = Symbol('fromEnv');
let logThrough; // (resolver, level, message, fields) => void, set in Resolver's static block
let hotToken; // (resolver, workspaceId) => the token its fast path serves now, or undefined; set below

/** The body as the native side takes it (a Buffer or a string), after checking the other arguments. */
function webhookBody(body, signature, deliveryId) {
  if (typeof signature !== 'string') throw invalidInput('signature must be the Linear-Signature header, a string');
  if (deliveryId != null && typeof deliveryId !== 'string') throw invalidInput('deliveryId must be a string');
  if (typeof body === 'string' || Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw invalidInput('body must be the raw request body: a Buffer, Uint8Array or string');
}

function checkId(name, value) {
  if (typeof value !== 'string') throw invalidInput(`${name} must be a string, got ${value === null ? 'null' : typeof value}`);
}

// How many token objects a resolver keeps, per map and generation: objects
// used more than once, at most `HOT_MAX`; new ones, at most `NEW_MAX`. A
// fleet's resolver (100,000 workspaces) keeps the host's tokens for its fast
// path, not also an object per workspace here.
const HOT_MAX = 1024;
const NEW_MAX = 32;

/** Objects by id in two generations: when the current one is full, it becomes the previous one, whose objects go. */
class Generations {
  now = new Map();
  before = new Map();

  constructor(max) {
    this.max = max;
  }

  get(id) {
    return this.now.get(id) ?? this.before.get(id);
  }

  set(id, t) {
    if (this.now.size >= this.max) {
      this.before = this.now;
      this.now = new Map();
    }
    this.now.set(id, t);
  }

  delete(id) {
    this.now.delete(id);
    this.before.delete(id);
  }
}

/**
 * Token objects by id, the ones likely to be asked for again: a new object
 * waits among the last new ones, and is kept on its next use with the
 * recently used ones (a hit among the older of those moves it back to the
 * current generation). An object that goes is not lost: the host still
 * serves its token and hands over a new object's fields without I/O. A sweep
 * over a fleet, each workspace resolved once, keeps at most 2 x `NEW_MAX`
 * objects, which die young. O(1).
 */
class HotMap {
  #new;
  #used;

  constructor(max) {
    this.#new = new Generations(Math.min(NEW_MAX, max));
    this.#used = new Generations(max);
  }

  get(id) {
    const t = this.#used.now.get(id);
    if (t !== undefined) return t;
    const kept = this.#used.before.get(id) ?? this.#new.get(id);
    if (kept !== undefined) {
      this.delete(id);
      this.#used.set(id, kept);
    }
    return kept;
  }

  // A new object for `id`.
  set(id, t) {
    this.delete(id);
    this.#new.set(id, t);
  }

  delete(id) {
    this.#new.delete(id);
    this.#used.delete(id);
  }
}

/**
 * Resolves Linear access tokens; one per process is usual (it caches).
 *
 * Three tiers, the first two on the calling thread:
 * 1. `#hot*`: the token objects this resolver made, by id, each served from
 *    here until the sooner of the host's `serve_until` and refresh-ahead
 *    instants. Which tokens a call drops early is the host's rule alone: the
 *    host counts its drops (its cache's generation), each object carries the
 *    generation at which it was last known to be the host's token, and once
 *    a call that may drop tokens has run and the count moved, each object is
 *    checked once more (`native.cached(id, serial)` answers `true` while the
 *    host serves that very token; the same object is then handed out). The
 *    host only replaces an entry after it has expired, so this is the host's
 *    fast path with the napi call taken out, not a second policy (a cached
 *    resolve took 73 ns with these maps against 560 ns through
 *    `native.cached()` alone, in one run of `node bench.mjs --quick`).
 *    Only the recently used objects are kept (`HotMap`), so a fleet's
 *    resolver holds the host's tokens, not also an object per workspace.
 * 2. `native.cached()`: asks the host (no I/O).
 * 3. `native.resolve()`: the component, store and network on a libuv thread.
 */
class Resolver {
  #native;
  #hotWorkspaces;
  #hotSecrets;
  // Resolves served from the hot maps, not yet handed to the host's counter.
  #hotHits = 0;
  // The host cache's generation as last read: an object stamped with it is
  // served from the hot maps without asking the host.
  #gen;
  // In-flight slow-path calls by id: concurrent callers share one worker task
  // instead of each occupying a libuv thread. (The host single-flights
  // refreshes on its own; this only saves threads.)
  #workspaces = new Map();
  #secrets = new Map();

  constructor(options, kind) {
    const [opts, log] = nativeOptions(options);
    this.#native =
      kind === FROM_ENV ? binding.Resolver.fromEnv(opts, makeError, log) : new binding.Resolver(opts, makeError, log);
    // As many as the host keeps, if that is fewer.
    const max = Math.min(this.#native.cacheMaxEntries(), HOT_MAX);
    this.#hotWorkspaces = new HotMap(max);
    this.#hotSecrets = new HotMap(max);
    this.#synced();
  }

  /** Options from the same environment variables as the CLI; `options` override them. */
  static fromEnv(options) {
    return new Resolver(options, FROM_ENV);
  }

  resolve(workspaceId) {
    return this.#resolve(this.#hotWorkspaces, this.#workspaces, 'workspaceId', workspaceId, false);
  }

  resolveSecret(secretId) {
    return this.#resolve(this.#hotSecrets, this.#secrets, 'secretId', secretId, true);
  }

  #resolve(hot, inflight, name, id, secret) {
    const t = hot.get(id);
    if (t !== undefined && fresh(t, this.#gen)) {
      this.#hotHits++;
      return Promise.resolve(t);
    }
    if (typeof id === 'string') {
      let c;
      try {
        const known = t === undefined ? 0 : serialOf(t);
        c = secret ? this.#native.cachedSecret(id, known) : this.#native.cached(id, known);
      } catch (e) {
        // A host bug (INTERNAL): a rejection, as from the slow path, never a throw.
        return Promise.reject(e);
      }
      if (c === true) {
        stamp(t, this.#gen);
        return Promise.resolve(t);
      }
      if (c !== null) return Promise.resolve(this.#keep(hot, id, c, this.#gen));
      if (t !== undefined) hot.delete(id);
    }
    return this.#slow(hot, inflight, name, id, secret);
  }

  // A token object for the host's fields `f` of the token under `id`,
  // stamped with `generation` (read before the host answered) and kept.
  #keep(hot, id, f, generation) {
    const t = new LinearOAuthToken(f, generation);
    hot.set(id, t);
    return t;
  }

  // Reads the host's generation once `p` (a call that may make the host drop
  // tokens) has settled, whatever its outcome, or now: if it moved, every
  // hot object was stamped before a drop and is checked on its next use.
  #synced(p) {
    const sync = () => {
      this.#gen = this.#native.generation();
    };
    if (p === undefined) sync();
    else p.then(sync, sync);
    return p;
  }

  // No object is served from the hot maps until the next sync: every one is
  // checked with the host first.
  #checkAll() {
    this.#gen = -1;
  }

  #slow(hot, inflight, name, id, secret) {
    try {
      checkId(name, id);
    } catch (e) {
      return Promise.reject(e);
    }
    let p = inflight.get(id);
    if (p === undefined) {
      p = this.#tokenCall(hot, id, secret ? this.#native.resolveSecret(id) : this.#native.resolve(id));
      inflight.set(id, p);
      const done = () => {
        if (inflight.get(id) === p) inflight.delete(id);
      };
      p.then(done, done);
    }
    return p;
  }

  // A native call that answers with a token's fields: its object is kept
  // under `id` (checked with the host before it is next served if the
  // generation moved meanwhile), and the host's generation read after.
  #tokenCall(hot, id, call) {
    const generation = this.#gen;
    return this.#synced(call.then((f) => this.#keep(hot, id, f, generation)));
  }

  /**
   * A Linear API call with `accessToken` got 401: resolves to a token to
   * retry with. The stored one when it is another token (no request to
   * Linear), else a refresh under the usual single flight and lease.
   */
  reportUnauthorized(workspaceId, accessToken) {
    try {
      checkId('workspaceId', workspaceId);
      if (typeof accessToken !== 'string') throw invalidInput('accessToken must be a string');
    } catch (e) {
      return Promise.reject(e);
    }
    this.#workspaces.delete(workspaceId);
    // The host drops the rejected token before it asks the component, on
    // another thread: not served from here meanwhile.
    this.#hotWorkspaces.delete(workspaceId);
    this.#checkAll();
    return this.#tokenCall(this.#hotWorkspaces, workspaceId, this.#native.reportUnauthorized(workspaceId, accessToken));
  }

  /** `reportUnauthorized` for a token resolved by secret id (same rule). */
  reportUnauthorizedSecret(secretId, accessToken) {
    try {
      checkId('secretId', secretId);
      if (typeof accessToken !== 'string') throw invalidInput('accessToken must be a string');
    } catch (e) {
      return Promise.reject(e);
    }
    this.#secrets.delete(secretId);
    this.#hotSecrets.delete(secretId);
    this.#checkAll();
    return this.#tokenCall(this.#hotSecrets, secretId, this.#native.reportUnauthorizedSecret(secretId, accessToken));
  }

  /**
   * `fetch` with the workspace's token as a Bearer header; on a 401, reports
   * the rejected token and retries once (see `authorizedFetch`).
   */
  fetch(workspaceId, input, init) {
    return authorizedFetch(
      () => this.resolve(workspaceId),
      (rejected) => this.reportUnauthorized(workspaceId, rejected),
      input,
      init,
    );
  }

  /** `fetch` with the token of a secret id (no registry). */
  fetchBySecretId(secretId, input, init) {
    return authorizedFetch(
      () => this.resolveSecret(secretId),
      (rejected) => this.reportUnauthorizedSecret(secretId, rejected),
      input,
      init,
    );
  }

  /** Refreshes now even if the stored token is fresh. */
  forceRefresh(secretId) {
    try {
      checkId('secretId', secretId);
    } catch (e) {
      return Promise.reject(e);
    }
    this.#secrets.delete(secretId);
    return this.#tokenCall(this.#hotSecrets, secretId, this.#native.forceRefresh(secretId));
  }

  /**
   * Revokes the workspace's grant at Linear and marks it revoked here.
   * Resolves to `{outcome, confirmed, detail, linearStatus, purged, ...}`.
   */
  revoke(workspaceId, options) {
    try {
      checkId('workspaceId', workspaceId);
      if (options !== undefined && (options === null || typeof options !== 'object')) {
        throw invalidInput('revoke options must be an object like {purge: true}');
      }
    } catch (e) {
      return Promise.reject(e);
    }
    this.#workspaces.delete(workspaceId);
    return this.#synced(this.#native.revoke(workspaceId, options));
  }

  /**
   * Installs a workspace with Linear's client_credentials grant (no browser).
   * Resolves to `{workspaceId, workspaceSlug, secretId, scope, expiresAt, ...}`.
   */
  installClientCredentials(params) {
    const shape = 'installClientCredentials needs {clientId, clientSecret, scopes: string[], installedBy} (strings)';
    const ok =
      params !== null &&
      typeof params === 'object' &&
      ['clientId', 'clientSecret', 'installedBy'].every((k) => typeof params[k] === 'string') &&
      Array.isArray(params.scopes) &&
      params.scopes.every((s) => typeof s === 'string');
    // Checked here so a bad call rejects with INVALID_INPUT (never echoing a value) instead of throwing.
    if (!ok) return Promise.reject(invalidInput(shape));
    return this.#synced(this.#native.installClientCredentials(params));
  }

  /**
   * Checks a Linear webhook delivery: `signature` (the `Linear-Signature`
   * header) over the exact raw body (a Buffer, or the string as received),
   * then the replay window. Resolves to the event; rejects with
   * `WEBHOOK_SIGNATURE`, `WEBHOOK_STALE` or `WEBHOOK_MALFORMED`. With the
   * signing secret cached it settles without leaving this thread.
   */
  verifyWebhook(body, signature, deliveryId) {
    let hit;
    try {
      body = webhookBody(body, signature, deliveryId);
      hit = this.#native.verifyWebhookCached(body, signature, deliveryId);
    } catch (e) {
      return Promise.reject(e);
    }
    if (hit != null) return Promise.resolve(hit);
    return this.#native.verifyWebhook(body, signature, deliveryId);
  }

  /**
   * `verifyWebhook`, then acts on lifecycle events: Linear's `OAuthApp`
   * `revoked` for this app marks the workspace revoked (`outcome` says what
   * happened); other events come back untouched.
   */
  handleWebhook(body, signature, deliveryId) {
    try {
      body = webhookBody(body, signature, deliveryId);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#synced(this.#native.handleWebhook(body, signature, deliveryId));
  }

  /** Stores a webhook signing secret: `{workspaceId}` or `{secretId}`, or with neither the stack-wide one. */
  setWebhookSecret(value, target) {
    if (typeof value !== 'string') return Promise.reject(invalidInput('the signing secret must be a string'));
    if (target !== undefined && (target === null || typeof target !== 'object')) {
      return Promise.reject(invalidInput('setWebhookSecret target must be an object like {workspaceId}'));
    }
    return this.#native.setWebhookSecret(value, target);
  }

  /** Every metric of the host's table since this resolver was made (README: Metrics). */
  metrics() {
    this.#handHotHits();
    return this.#native.metrics();
  }

  /** With `metricsEmf`: one EMF line of the resolve counts since the last flush; call before a Lambda handler returns. */
  flushMetrics() {
    this.#handHotHits();
    this.#native.flushMetrics();
  }

  #handHotHits() {
    if (this.#hotHits > 0) this.#native.countCachedResolves(this.#hotHits);
    this.#hotHits = 0;
  }

  /** Forgets everything cached about this workspace. */
  invalidate(workspaceId) {
    checkId('workspaceId', workspaceId);
    this.#workspaces.delete(workspaceId);
    this.#hotWorkspaces.delete(workspaceId);
    this.#native.invalidate(workspaceId);
    this.#synced();
  }

  static {
    hotToken = (resolver, workspaceId) => {
      const t = resolver.#hotWorkspaces.get(workspaceId);
      if (t === undefined || !fresh(t, resolver.#gen)) return undefined;
      resolver.#hotHits++;
      return t;
    };
    logThrough = (resolver, level, message, fields) => {
      const flat = [];
      for (const [k, v] of Object.entries(fields)) flat.push(k, String(v));
      resolver.#native.log(level, message, flat);
    };
  }
}

// ---------------------------------------------------------------- fetch

// Bodies `fetch` can send again as they are: anything but a stream.
function replayable(body) {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof URLSearchParams ||
    (typeof Blob !== 'undefined' && body instanceof Blob) ||
    (typeof FormData !== 'undefined' && body instanceof FormData)
  );
}

// The caller's init with `Authorization: Bearer <token>` added to its
// headers (or, without init headers, to those of a Request input: init
// headers replace a Request's, as in `fetch` itself).
function withBearer(input, init, token) {
  const base = init && init.headers !== undefined ? init.headers : input instanceof Request ? input.headers : undefined;
  const headers = new Headers(base);
  headers.set('authorization', `Bearer ${token.accessToken}`);
  return { ...init, headers };
}

/**
 * One request with a resolved token; on a 401, `report(rejected)` gives the
 * token to retry with (a refresh only if the rejected one is still stored)
 * and the request goes once more; whatever that answers is the result. A
 * Request input's body is teed (`clone()`) so that it can go twice; a
 * stream in `init.body` cannot, and its 401 is returned as it is.
 */
async function authorizedFetch(resolve, report, input, init) {
  const token = await resolve();
  const initBody = init == null ? undefined : init.body;
  const requestBody = initBody === undefined && input instanceof Request && input.body !== null;
  const again = initBody === undefined ? !(requestBody && input.bodyUsed) : replayable(initBody);
  const first = await fetch(again && requestBody ? input.clone() : input, withBearer(input, init, token));
  if (first.status !== 401 || !again) return first;
  // Free the connection before the retry takes another.
  if (first.body !== null) await first.body.cancel().catch(() => {});
  const next = await report(token.accessToken);
  return fetch(input, withBearer(input, init, next));
}

/** Whether the embedded precompiled component was used (no JIT at load), and the load time. */
function loadInfo() {
  try {
    return binding.loadInfo();
  } catch (e) {
    throw new LinearOAuthError('INTERNAL', e.message);
  }
}

// ------------------------------------------------- compatibility helpers

/** The old module's result shape; `accessToken` is hidden the same way. */
class LinearOauthTokenResult {
  #accessToken;

  constructor(token) {
    this.#accessToken = token.accessToken;
    this.scope = token.scope;
    this.workspaceSlug = token.workspaceSlug;
    this.oauthSecretArn = token.secretId;
    Object.freeze(this);
  }

  get accessToken() {
    return this.#accessToken;
  }

  toJSON() {
    return { scope: this.scope, workspaceSlug: this.workspaceSlug, oauthSecretArn: this.oauthSecretArn };
  }

  [inspect.custom](depth, options, inspectFn) {
    return `LinearOauthTokenResult ${(inspectFn || inspect)({ accessToken: REDACTED, ...this.toJSON() }, options)}`;
  }
}

let moduleResolver;

// Each token's compat result, made once: both are frozen, so a cached token
// is answered without building and freezing a new object per call.
const compatResults = new WeakMap();

function compatResult(token) {
  let c = compatResults.get(token);
  if (c === undefined) {
    c = new LinearOauthTokenResult(token);
    compatResults.set(token, c);
  }
  return c;
}

function compatResolver(registryTableName, options) {
  if (options && options.resolver !== undefined) {
    if (!(options.resolver instanceof Resolver)) throw invalidInput('options.resolver must be a Resolver');
    return options.resolver;
  }
  if (moduleResolver === undefined) {
    // The old module named the DynamoDB registry per call; it is the aws
    // store's registry table (LINEAR_OAUTH_STORE=aws). Old callers pass it
    // whatever the store, so another store chosen explicitly ignores it; with
    // no store chosen it is refused (invalid input naming
    // LINEAR_OAUTH_STORE), never read from a default file store.
    const store = process.env.LINEAR_OAUTH_STORE;
    const table = registryTableName && (!store || store === 'aws') ? String(registryTableName) : undefined;
    moduleResolver = table ? Resolver.fromEnv({ registryTable: table }) : Resolver.fromEnv();
  }
  return moduleResolver;
}

/**
 * The old module's contract: a token for a Linear organization id, or null
 * after logging why not. `registryTableName` is the DynamoDB registry table of
 * the aws store (`LINEAR_OAUTH_STORE=aws`); it configures the module-level
 * resolver when that is first created.
 */
function resolveLinearOauthToken(linearWorkspaceId, registryTableName, options) {
  let resolver;
  try {
    resolver = compatResolver(registryTableName, options);
  } catch (e) {
    return Promise.resolve().then(() => compatFailure(resolver, linearWorkspaceId, e));
  }
  // A token the fast path serves: answered on this thread, without the extra
  // await an async wrapper around `resolver.resolve` would cost.
  const hot = hotToken(resolver, linearWorkspaceId);
  if (hot !== undefined) return Promise.resolve(compatResult(hot));
  return resolveCompatSlow(resolver, linearWorkspaceId);
}

async function resolveCompatSlow(resolver, linearWorkspaceId) {
  try {
    return compatResult(await resolver.resolve(linearWorkspaceId));
  } catch (e) {
    return compatFailure(resolver, linearWorkspaceId, e);
  }
}

/** Logs why the compat helper has no token; its result is then null. */
function compatFailure(resolver, linearWorkspaceId, e) {
  const code = e instanceof LinearOAuthError ? e.code : 'INTERNAL';
  const fields = { workspace_id: String(linearWorkspaceId), code, error: e && e.message ? e.message : String(e) };
  const level = code === 'NOT_REGISTERED' || code === 'REVOKED' ? 'warn' : 'error';
  const message = 'resolveLinearOauthToken: no token';
  if (resolver !== undefined) {
    logThrough(resolver, level, message, fields);
  } else {
    process.stderr.write(JSON.stringify({ level, message, ...fields, time: new Date().toISOString() }) + '\n');
  }
  return null;
}

/** The old module's cache reset, on the module-level resolver. */
function invalidateLinearOauthCache(workspaceId) {
  if (moduleResolver !== undefined) moduleResolver.invalidate(workspaceId);
}

module.exports = {
  Resolver,
  LinearOAuthError,
  LinearOAuthToken,
  LinearOauthTokenResult,
  ERROR_CODES,
  loadInfo,
  resolveLinearOauthToken,
  invalidateLinearOauthCache,
};

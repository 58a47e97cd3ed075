// Type-checked (never run) by tests/types.test.mjs: the public API as a
// TypeScript caller sees it through index.d.ts.
import {
  Resolver,
  LinearOAuthError,
  LinearOAuthToken,
  LinearOauthTokenResult,
  ERROR_CODES,
  loadInfo,
  resolveLinearOauthToken,
  invalidateLinearOauthCache,
  type ErrorCode,
  type Logger,
  type LogRecord,
  type ResolverOptions,
  type RevokeOutcome,
  type WebhookEvent,
  type WebhookOutcome,
} from '../../index.js';

const records: LogRecord[] = [];
const fnLogger: Logger = (r) => records.push(r);
const objLogger: Logger = { info: (m, f) => console.log(m, f), warn: () => {}, error: () => {}, debug: () => {} };
const opts: ResolverOptions = {
  store: 'file:/tmp/x',
  apiBase: 'https://api.linear.app',
  authorizeUrl: 'https://linear.app/oauth/authorize',
  refreshThresholdSeconds: 60,
  cacheTtlSeconds: 60,
  logLevel: 'warn',
  logger: fnLogger,
};

async function use(): Promise<string> {
  const r = new Resolver(opts);
  const r2: Resolver = Resolver.fromEnv({ logger: objLogger });
  const t: LinearOAuthToken = await r.resolve('org-1');
  const s: LinearOAuthToken = await r2.resolveSecret('secret');
  const f: LinearOAuthToken = await r.forceRefresh(s.secretId);
  r.invalidate(t.workspaceId);
  const hook: WebhookEvent = await r.verifyWebhook(new Uint8Array(2), 'sig', 'delivery');
  const handled: WebhookEvent = await r.handleWebhook('{}', 'sig');
  const outcome: WebhookOutcome | undefined = handled.outcome;
  const matched: 'workspace' | 'stack' = handled.matched;
  const revoked: RevokeOutcome = (await r.revoke('org-1')).outcome;
  const res: Response = await r.fetch('org-1', 'https://api.linear.app/graphql', { method: 'POST', body: '{}' });
  const res2: Response = await r.fetchBySecretId('secret', new URL('https://api.linear.app/graphql'));
  const again: LinearOAuthToken = await r.reportUnauthorizedSecret('secret', t.accessToken);
  const until: Date = again.expiresAtDate;
  console.log(matched, revoked, res.status, res2.ok, until.getTime());
  await r.setWebhookSecret('whsec', { workspaceId: hook.organizationId ?? 'org-1' });
  console.log(hook.type, hook.matched, hook.data, hook.timestampMs, outcome);
  const when: string = f.expiresAt;
  const info: { compiledFallback: boolean; loadTimeMs: number } = loadInfo();
  try {
    await r.resolve('org-2');
  } catch (e) {
    if (e instanceof LinearOAuthError) {
      const code: ErrorCode = e.code;
      const fields: string[] | undefined = e.invalidFields;
      const status: number | null | undefined = e.status;
      console.log(code, fields, status, e.error, e.description, e.message);
    }
  }
  const old: LinearOauthTokenResult | null = await resolveLinearOauthToken('org-1', 'table');
  const arn: string | undefined = old?.oauthSecretArn;
  invalidateLinearOauthCache('org-1');
  const codes: readonly ErrorCode[] = ERROR_CODES;
  return `${t.accessToken}${when}${info.compiledFallback}${arn}${codes.length}`;
}

// @ts-expect-error: the token is read-only
(null as unknown as LinearOAuthToken).accessToken = 'x';
// @ts-expect-error: not an outcome revoke has
const badOutcome: RevokeOutcome = 'maybe';
// @ts-expect-error: unknown log level
const badLevel: ResolverOptions = { logLevel: 'loud' };

void use;
void badLevel;
void badOutcome;

// The aws store is selected with the same strings as the CLI and Python:
// store 'aws' plus a registry table (option registryTable or
// LINEAR_OAUTH_REGISTRY_TABLE). Construction does no AWS I/O.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const lo = require('../index.js');

test('store aws needs a registry table and accepts registryTable', () => {
  assert.throws(
    () => new lo.Resolver({ store: 'aws' }),
    (e) => e instanceof lo.LinearOAuthError && e.code === 'INVALID_INPUT' && /registry table/.test(e.message),
  );
  const r = new lo.Resolver({ store: 'aws', registryTable: 'linear-workspaces' });
  assert.ok(r instanceof lo.Resolver);
  assert.throws(
    () => new lo.Resolver({ store: 'aws', registryTable: 42 }),
    (e) => e instanceof lo.LinearOAuthError && e.code === 'INVALID_INPUT',
  );
});

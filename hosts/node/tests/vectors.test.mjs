// The shared stored-token vectors: each value, written into a file store,
// resolves or fails at read time with exactly the vector's bad fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import lo from '../index.js';
import { useServer, tmpStore, writeSecret, options, repoRoot, captureLogger, settleLogs } from './helpers.mjs';

const vectors = JSON.parse(fs.readFileSync(path.join(repoRoot, 'tests/vectors/stored_tokens.json'), 'utf8'));
let server;
// Counters and faults carry over between these tests: no reset.
useServer((s) => (server = s), { reset: false });

test('the vector file has both kinds of case', () => {
  assert.ok(vectors.vectors.some((v) => v.valid));
  assert.ok(vectors.vectors.some((v) => !v.valid));
});

for (const [i, v] of vectors.vectors.entries()) {
  test(`stored token vector: ${v.name}`, async () => {
    const dir = tmpStore();
    const id = `vector-${i}`;
    writeSecret(dir, id, v.value);
    const log = captureLogger();
    const r = new lo.Resolver(options(server, dir, { logger: log }));
    if (v.valid) {
      const t = await r.resolveSecret(id);
      assert.ok(t instanceof lo.LinearOAuthToken);
      assert.equal(t.accessToken, 'lin_oauth_vector_access');
      assert.equal(t.secretId, id);
      assert.equal(t.workspaceSlug, 'testws');
    } else {
      await assert.rejects(r.resolveSecret(id), (e) => {
        assert.ok(e instanceof lo.LinearOAuthError, String(e));
        assert.equal(e.code, 'INVALID_STORED_TOKEN');
        assert.deepEqual(e.invalidFields, v.bad_fields);
        assert.deepEqual(e.missingFields, v.bad_fields, 'the old name still works');
        for (const f of v.bad_fields) assert.match(e.message, new RegExp(f));
        return true;
      });
      await settleLogs();
      const rec = log.records.find((x) => x.secret_id === id);
      assert.ok(rec, log.text());
      assert.equal(rec.fields, v.bad_fields.join(','));
    }
  });
}

test('a bad stored token fails at read time, before any refresh', async () => {
  const c = await server.counters();
  assert.equal(c.token_requests, 0);
});

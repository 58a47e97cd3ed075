// index.d.ts is valid TypeScript and describes the API as index.js implements it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { pkgDir } from './helpers.mjs';

test('tsc --strict accepts index.d.ts and a caller using every export', () => {
  const tsc = path.join(pkgDir, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(
    process.execPath,
    [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--lib', 'es2024,dom', 'tests/types/usage.ts'],
    { cwd: pkgDir, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

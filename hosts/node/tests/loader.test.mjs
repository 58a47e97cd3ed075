// The loader's choice of platform package: libc detection (from faked ldd
// text and process reports) and the error that names the package to install.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

import { pkgDir } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { detectLibc, currentLibc, platformPackage, PLATFORMS } = require('../native.js');

// glibc's ldd is a bash script "part of the GNU C Library" (glibc elf/ldd.bash.in);
// Alpine's is two lines that run musl's loader in list mode (Alpine aports, main/musl/ldd).
const GLIBC_LDD = '#! /bin/bash\n# This file is part of the GNU C Library.\nTEXTDOMAIN=libc\n';
const MUSL_LDD = '#!/bin/sh\nexec /lib/ld-musl-x86_64.so.1 --list "$@"\n';
// Node's diagnostic report (nodejs.org/api/report.html): header.glibcVersionRuntime
// is present when Node runs on glibc and absent on musl.
const GLIBC_REPORT = { header: { glibcVersionRuntime: '2.36', glibcVersionCompiler: '2.28', osName: 'Linux' } };
const MUSL_REPORT = { header: { osName: 'Linux' }, sharedObjects: ['/lib/ld-musl-x86_64.so.1'] };

test('ldd text decides without asking for a process report', () => {
  const never = () => assert.fail('getReport must not be called when ldd settles it');
  assert.equal(detectLibc(GLIBC_LDD, never), 'glibc');
  assert.equal(detectLibc(MUSL_LDD, never), 'musl');
});

test('without a readable or telling ldd, the report header decides', () => {
  assert.equal(detectLibc(null, () => GLIBC_REPORT), 'glibc');
  assert.equal(detectLibc(null, () => MUSL_REPORT), 'musl');
  assert.equal(detectLibc('#!/bin/sh\necho unknown\n', () => MUSL_REPORT), 'musl');
  assert.equal(detectLibc(null, () => null), 'glibc', 'nothing known: glibc, the common case');
  assert.equal(detectLibc(null, undefined), 'glibc');
});

test('on this machine, ldd and the real process report agree', () => {
  if (process.platform !== 'linux') return;
  let ldd = null;
  try {
    ldd = fs.readFileSync('/usr/bin/ldd', 'latin1');
  } catch {}
  const fromReport = detectLibc(null, () => process.report.getReport());
  assert.equal(fromReport, process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl');
  if (ldd !== null) assert.equal(detectLibc(ldd, () => null), fromReport);
  assert.equal(currentLibc(), fromReport);
});

test('each (arch, libc) maps to its own package', () => {
  assert.equal(platformPackage('linux', 'x64', 'glibc'), 'linux-x64-gnu');
  assert.equal(platformPackage('linux', 'arm64', 'glibc'), 'linux-arm64-gnu');
  assert.equal(platformPackage('linux', 'x64', 'musl'), 'linux-x64-musl');
  assert.equal(platformPackage('linux', 'arm64', 'musl'), 'linux-arm64-musl');
  assert.equal(platformPackage('darwin', 'arm64', null), undefined);
  // Every package the loader can ask for has a template that dist.py packs.
  for (const plat of Object.values(PLATFORMS)) {
    const meta = JSON.parse(fs.readFileSync(path.join(pkgDir, 'npm', plat, 'package.json'), 'utf8'));
    assert.equal(meta.name, `linear-oauth-${plat}`);
    assert.deepEqual(meta.libc, [plat.endsWith('-musl') ? 'musl' : 'glibc']);
    assert.equal(meta.main, `linear-oauth.${plat}.node`);
  }
});

test('a missing platform package is named with the command that installs it', () => {
  // The loader alone, away from the built addon and from node_modules.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lo-loader-'));
  try {
    fs.copyFileSync(path.join(pkgDir, 'native.js'), path.join(dir, 'native.js'));
    const isolated = createRequire(path.join(dir, 'x.js'))('./native.js');
    for (const libc of ['musl', 'glibc']) {
      const plat = platformPackage('linux', process.arch, libc);
      if (process.platform !== 'linux' || !plat) continue;
      assert.throws(
        () => isolated.loadNative(libc),
        (e) => {
          assert.match(e.message, new RegExp(`npm install linear-oauth-${plat}\``));
          assert.match(e.message, new RegExp(`linux-${process.arch} \\(${libc}\\)`));
          assert.match(e.message, /Tried .*linear-oauth\.node/);
          return true;
        },
      );
    }
    if (process.platform === 'linux') {
      assert.throws(() => isolated.loadNative(), new RegExp(`npm install linear-oauth-linux-${process.arch}-${currentLibc() === 'musl' ? 'musl' : 'gnu'}\``));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

'use strict';
// Finds the native addon. Published installs get it from the per-platform
// package npm picked through optionalDependencies (linear-oauth-linux-x64-gnu,
// linear-oauth-linux-arm64-gnu and their -musl twins); a source checkout uses
// the file `npm run build` leaves next to this one. Resolved with `require`
// from this file, so it works when the handler is bundled with `linear-oauth`
// kept external.

const PLATFORMS = Object.freeze({
  'linux-x64-glibc': 'linux-x64-gnu',
  'linux-arm64-glibc': 'linux-arm64-gnu',
  'linux-x64-musl': 'linux-x64-musl',
  'linux-arm64-musl': 'linux-arm64-musl',
});

/**
 * The C library this Node runs on, 'glibc' or 'musl', from two inputs that
 * are passed in so tests can fake them: the text of /usr/bin/ldd (a script
 * that names its libc: GNU's mentions glibc, Alpine's runs ld-musl; null
 * when unreadable) and a thunk for `process.report.getReport()`, which is
 * asked only when ldd does not settle it (it costs milliseconds). The report
 * header has `glibcVersionRuntime` exactly when Node runs on glibc.
 */
function detectLibc(lddText, getReport) {
  if (typeof lddText === 'string') {
    if (/musl/i.test(lddText)) return 'musl';
    if (/GNU C Library|glibc|GLIBC/.test(lddText)) return 'glibc';
  }
  const report = typeof getReport === 'function' ? getReport() : null;
  const header = report && report.header;
  if (!header) return 'glibc'; // nothing to go on: the common case
  return header.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** The platform package suffix for (platform, arch, libc), or undefined when none is built. */
function platformPackage(platform, arch, libc) {
  return PLATFORMS[`${platform}-${arch}-${libc}`];
}

function readLdd() {
  try {
    return require('node:fs').readFileSync('/usr/bin/ldd', 'latin1');
  } catch {
    return null;
  }
}

function nodeReport() {
  if (!process.report || typeof process.report.getReport !== 'function') return null;
  const exclude = process.report.excludeNetwork;
  process.report.excludeNetwork = true; // no DNS lookups for the network section
  try {
    return process.report.getReport();
  } finally {
    process.report.excludeNetwork = exclude;
  }
}

/** The error for a platform without a loadable addon; it names the package to install. */
function missingAddonError(key, platform, tried) {
  const supported = [...new Set(Object.values(PLATFORMS))].join(', ');
  if (!platform) {
    return new Error(`linear-oauth: no native addon for ${key}. Tried ${tried.join(', ')}. Supported platforms: ${supported}.`);
  }
  const pkg = `linear-oauth-${platform}`;
  return new Error(
    `linear-oauth: no native addon for ${key}. Tried ${tried.join(', ')}. ` +
      `Install it with \`npm install ${pkg}\` (it is an optional dependency: do not use --no-optional / --omit=optional), ` +
      'and keep linear-oauth external when bundling (esbuild --external:linear-oauth, CDK nodeModules).',
  );
}

/** This process's libc on Linux, null elsewhere. */
function currentLibc() {
  return process.platform === 'linux' ? detectLibc(readLdd(), nodeReport) : null;
}

/** `libc` is for tests (the package a musl Node would need, on this machine). */
function loadNative(libc = currentLibc()) {
  const key = `${process.platform}-${process.arch}${libc ? ` (${libc})` : ''}`;
  const platform = platformPackage(process.platform, process.arch, libc);
  const candidates = [];
  if (platform) {
    candidates.push(`./linear-oauth.${platform}.node`);
  }
  candidates.push('./linear-oauth.node');
  if (platform) {
    candidates.push(`linear-oauth-${platform}`);
  }
  const failures = [];
  for (const id of candidates) {
    try {
      return require(id);
    } catch (e) {
      // Only "not there" moves on; a binary that exists but fails to load is the answer.
      if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(id)) {
        failures.push(id);
        continue;
      }
      throw e;
    }
  }
  throw missingAddonError(key, platform, failures);
}

module.exports = { loadNative, PLATFORMS, detectLibc, currentLibc, platformPackage };

'use strict';
// Finds the native addon. Published installs get it from the per-platform
// package npm picked through optionalDependencies (linear-oauth-linux-x64-gnu,
// linear-oauth-linux-arm64-gnu); a source checkout uses the file `npm run
// build` leaves next to this one. Resolved with `require` from this file, so
// it works when the handler is bundled with `linear-oauth` kept external.

const PLATFORMS = Object.freeze({
  'linux-x64': 'linux-x64-gnu',
  'linux-arm64': 'linux-arm64-gnu',
});

function loadNative() {
  const key = `${process.platform}-${process.arch}`;
  const platform = PLATFORMS[key];
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
  const supported = Object.keys(PLATFORMS).join(', ');
  throw new Error(
    `linear-oauth: no native addon for ${key} (glibc). Tried ${failures.join(', ')}. ` +
      (platform
        ? `Install the optional dependency linear-oauth-${platform} (do not use --no-optional / --omit=optional), ` +
          'and keep linear-oauth external when bundling (esbuild --external:linear-oauth, CDK nodeModules).'
        : `Supported platforms: ${supported}.`),
  );
}

module.exports = { loadNative, PLATFORMS };

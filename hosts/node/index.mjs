// ESM entry: the same module as index.js (one native addon instance either way).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const lo = require('./index.js');

export const {
  Resolver,
  LinearOAuthError,
  LinearOAuthToken,
  LinearOauthTokenResult,
  ERROR_CODES,
  loadInfo,
  resolveLinearOauthToken,
  invalidateLinearOauthCache,
} = lo;

export default lo;

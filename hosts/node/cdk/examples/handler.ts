// A handler the example stack bundles: `linear-oauth` is left external and
// installed next to the bundle with the addon of the function's architecture.
import { Resolver } from 'linear-oauth';

const resolver = Resolver.fromEnv(); // LINEAR_OAUTH_STORE, _REGISTRY_TABLE, _SECRET_PREFIX from the construct

export async function handler(event: { workspaceId: string }): Promise<{ workspace: string; expiresAt: string }> {
  const token = await resolver.resolve(event.workspaceId);
  return { workspace: token.workspaceSlug, expiresAt: token.expiresAt };
}

// The README's example (hosts/node/cdk/README.md and hosts/node/README.md
// show the block between the markers; test/synth.test.js checks they match):
// the registry table, and a webhook function per Lambda architecture, each
// with the addon of its own architecture in its asset.
import * as path from 'node:path';

import { App } from 'aws-cdk-lib';
// README start
import { Stack, StackProps } from 'aws-cdk-lib';
import { Architecture } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { LinearOauth, LinearOauthFunction, LinearOauthPackages } from 'linear-oauth-cdk';

export class ExampleStack extends Stack {
  constructor(scope: Construct, id: string, props: StackProps & { entry: string; packages?: LinearOauthPackages }) {
    super(scope, id, props);
    const linearOauth = new LinearOauth(this, 'LinearOauth', { tableName: 'linear-workspaces' });
    for (const [name, architecture] of [['WebhookX86', Architecture.X86_64], ['WebhookArm', Architecture.ARM_64]] as const) {
      // Node 22, linear-oauth installed for `architecture`, LINEAR_OAUTH_STORE=aws,
      // LINEAR_OAUTH_REGISTRY_TABLE, LINEAR_OAUTH_SECRET_PREFIX, and grantResolve.
      new LinearOauthFunction(this, name, { linearOauth, entry: props.entry, architecture, packages: props.packages });
    }
  }
}
// README end

if (require.main === module) {
  const app = new App();
  new ExampleStack(app, 'LinearOauthExample', { entry: path.join(__dirname, '..', '..', 'examples', 'handler.ts') });
  app.synth();
}

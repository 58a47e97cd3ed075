'use strict';
// Synthesizes the README's example stack (examples/app.ts, compiled by
// `npm test` into build/) without AWS and without Docker: esbuild bundles
// locally, npm installs from tarballs offline, and the template and the
// assets on disk are inspected.
//
// The tarballs are made here from the real templates: hosts/node/package.json
// and the files it ships (with the optionalDependencies scripts/dist.py adds)
// and hosts/node/npm/<platform>/package.json, each platform package with a
// placeholder in place of its .node file (no arm64 addon can be built here).
// That proves npm's platform selection and the asset layout; make dist-check
// can repeat it with the real tarballs of dist/.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { App, Stack } = require('aws-cdk-lib');
const { Template } = require('aws-cdk-lib/assertions');
const dynamodb = require('aws-cdk-lib/aws-dynamodb');
const iam = require('aws-cdk-lib/aws-iam');
const kms = require('aws-cdk-lib/aws-kms');
const { Architecture } = require('aws-cdk-lib/aws-lambda');

const lo = require('linear-oauth-cdk');
const { ExampleStack } = require('../build/examples/app.js');

const PKG = path.resolve(__dirname, '..');
const NODE_HOST = path.resolve(PKG, '..');
const ENTRY = path.join(PKG, 'examples', 'handler.ts');
const PLATFORMS = { x64: 'linux-x64-gnu', arm64: 'linux-arm64-gnu' };
// Also optional dependencies of linear-oauth (scripts/dist.py), never in a Lambda asset (--libc=glibc).
const MUSL = ['linux-x64-musl', 'linux-arm64-musl'];
const ARCH = { x86_64: 'x64', arm64: 'arm64' };

let tmp;
let dist;
let version;

function npmPack(staging) {
  const out = execFileSync('npm', ['pack', '--pack-destination', dist], { cwd: staging, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return path.join(dist, out.trim().split('\n').at(-1));
}

function makeTarballs() {
  const main = JSON.parse(fs.readFileSync(path.join(NODE_HOST, 'package.json'), 'utf8'));
  version = main.version;
  for (const plat of Object.values(PLATFORMS)) {
    const staging = path.join(tmp, 'stage', plat);
    fs.mkdirSync(staging, { recursive: true });
    const pkg = JSON.parse(fs.readFileSync(path.join(NODE_HOST, 'npm', plat, 'package.json'), 'utf8'));
    assert.equal(pkg.version, version);
    fs.writeFileSync(path.join(staging, 'package.json'), JSON.stringify(pkg, null, 2));
    fs.writeFileSync(path.join(staging, pkg.main), `placeholder for the ${plat} addon\n`);
    npmPack(staging);
  }
  const staging = path.join(tmp, 'stage', 'linear-oauth');
  fs.mkdirSync(staging, { recursive: true });
  main.optionalDependencies = Object.fromEntries([...Object.values(PLATFORMS), ...MUSL].map((p) => [`linear-oauth-${p}`, version]));
  delete main.scripts;
  delete main.devDependencies;
  fs.writeFileSync(path.join(staging, 'package.json'), JSON.stringify(main, null, 2));
  for (const f of main.files) {
    fs.copyFileSync(path.join(NODE_HOST, f), path.join(staging, f));
  }
  npmPack(staging);
}

/** CloudFormation intrinsics as text: `${AWS::Region}`, `${Table.Arn}`. */
function render(v) {
  if (typeof v === 'string') return v;
  if (v.Ref) return `\${${v.Ref}}`;
  if (v['Fn::GetAtt']) return `\${${v['Fn::GetAtt'].join('.')}}`;
  if (v['Fn::Join']) return v['Fn::Join'][1].map(render).join(v['Fn::Join'][0]);
  throw new Error(`unexpected intrinsic ${JSON.stringify(v)}`);
}

const list = (x) => (Array.isArray(x) ? x : [x]);

/** A role's policy statements, with actions and resources as sorted text. */
function statementsOf(template, roleLogicalId) {
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
    p.Properties.Roles.some((r) => r.Ref === roleLogicalId),
  );
  return policies
    .flatMap((p) => p.Properties.PolicyDocument.Statement)
    .map((s) => ({
      effect: s.Effect,
      actions: list(s.Action).sort(),
      resources: list(s.Resource).map(render).sort(),
      condition: s.Condition,
    }))
    .sort((a, b) => a.actions[0].localeCompare(b.actions[0]));
}

function allStatements(template) {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement);
}

const SECRETS_ARN = 'arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:bgagent-linear-oauth-*';

let assembly;
let template;
let tableId;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'linear-oauth-cdk-'));
  dist = path.join(tmp, 'dist');
  fs.mkdirSync(dist);
  makeTarballs();
  const app = new App({ outdir: path.join(tmp, 'cdk.out') });
  const stack = new ExampleStack(app, 'LinearOauthExample', { entry: ENTRY, packages: { tarballDirectory: dist } });
  assembly = app.synth();
  template = Template.fromStack(stack);
  tableId = Object.keys(template.findResources('AWS::DynamoDB::Table'))[0];
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the registry table: linear_workspace_id, on-demand, point-in-time recovery, retained', () => {
  const tables = template.findResources('AWS::DynamoDB::Table');
  assert.equal(Object.keys(tables).length, 1);
  const t = tables[tableId];
  assert.deepEqual(t.Properties.KeySchema, [{ AttributeName: 'linear_workspace_id', KeyType: 'HASH' }]);
  assert.deepEqual(t.Properties.AttributeDefinitions, [{ AttributeName: 'linear_workspace_id', AttributeType: 'S' }]);
  assert.equal(t.Properties.BillingMode, 'PAY_PER_REQUEST');
  assert.equal(t.Properties.ProvisionedThroughput, undefined);
  assert.deepEqual(t.Properties.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
  assert.equal(t.Properties.TableName, 'linear-workspaces');
  assert.equal(t.DeletionPolicy, 'Retain');
  assert.equal(t.UpdateReplacePolicy, 'Retain');
});

test('each function: Node 22, its architecture, the store variables', () => {
  const fns = Object.values(template.findResources('AWS::Lambda::Function'));
  assert.deepEqual(fns.map((f) => f.Properties.Architectures).sort(), [['arm64'], ['x86_64']]);
  for (const f of fns) {
    assert.equal(f.Properties.Runtime, 'nodejs22.x');
    assert.equal(f.Properties.Handler, 'index.handler');
    assert.deepEqual(f.Properties.Environment.Variables, {
      LINEAR_OAUTH_STORE: 'aws',
      LINEAR_OAUTH_REGISTRY_TABLE: { Ref: tableId },
      LINEAR_OAUTH_SECRET_PREFIX: 'bgagent-linear-oauth-',
    });
  }
});

test("grantResolve: exactly the README's resolver actions, on the secret prefix and the table", () => {
  const fns = Object.values(template.findResources('AWS::Lambda::Function'));
  for (const f of fns) {
    const role = f.Properties.Role['Fn::GetAtt'][0];
    assert.deepEqual(statementsOf(template, role), [
      {
        effect: 'Allow',
        actions: ['dynamodb:ConditionCheckItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [`\${${tableId}.Arn}`],
        condition: undefined,
      },
      {
        effect: 'Allow',
        actions: ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage'],
        resources: [SECRETS_ARN],
        condition: undefined,
      },
    ]);
  }
  const statements = allStatements(template);
  assert.ok(statements.length >= 4);
  for (const s of statements) {
    for (const r of list(s.Resource)) assert.notEqual(r, '*', JSON.stringify(s));
    for (const a of list(s.Action)) assert.ok(!a.includes('*'), `a wildcard action: ${a}`);
  }
});

function assetDir(fn) {
  const key = fn.Properties.Code.S3Key;
  assert.match(key, /^[0-9a-f]{64}\.zip$/);
  const dir = path.join(assembly.directory, `asset.${key.slice(0, -4)}`);
  assert.ok(fs.statSync(dir).isDirectory(), dir);
  return dir;
}

test("each asset holds the platform package of its function's architecture, and not the other", () => {
  const fns = Object.values(template.findResources('AWS::Lambda::Function'));
  const seen = new Set();
  for (const f of fns) {
    const cpu = ARCH[f.Properties.Architectures[0]];
    const other = cpu === 'x64' ? 'arm64' : 'x64';
    const dir = assetDir(f);
    seen.add(dir);
    const own = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', `linear-oauth-${PLATFORMS[cpu]}`, 'package.json'), 'utf8'));
    assert.deepEqual([own.name, own.version, own.cpu, own.os, own.libc], [`linear-oauth-${PLATFORMS[cpu]}`, version, [cpu], ['linux'], ['glibc']]);
    assert.ok(fs.existsSync(path.join(dir, 'node_modules', `linear-oauth-${PLATFORMS[cpu]}`, own.main)));
    assert.ok(!fs.existsSync(path.join(dir, 'node_modules', `linear-oauth-${PLATFORMS[other]}`)), `${cpu} asset has ${other}`);
    for (const musl of MUSL) assert.ok(!fs.existsSync(path.join(dir, 'node_modules', `linear-oauth-${musl}`)), `${cpu} asset has ${musl}`);
    const main = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', 'linear-oauth', 'package.json'), 'utf8'));
    assert.equal(main.version, version);
    // linear-oauth is external: the bundle requires it, and does not contain its loader.
    const bundle = fs.readFileSync(path.join(dir, 'index.js'), 'utf8');
    assert.match(bundle, /require\("linear-oauth"\)/);
    assert.doesNotMatch(bundle, /no native addon for/);
    // The manifests npm needed name the build machine's paths: gone.
    for (const f of ['package.json', 'package-lock.json', 'node_modules/.package-lock.json']) {
      assert.ok(!fs.existsSync(path.join(dir, f)), f);
    }
  }
  assert.equal(seen.size, 2);
});

test('the asset hashes do not depend on where the tarballs are', () => {
  const moved = path.join(tmp, 'elsewhere', 'dist');
  fs.cpSync(dist, moved, { recursive: true });
  const app = new App({ outdir: path.join(tmp, 'cdk.out.2') });
  const stack = new ExampleStack(app, 'LinearOauthExample', { entry: ENTRY, packages: { tarballDirectory: moved } });
  const keys = (t) => Object.values(t.findResources('AWS::Lambda::Function')).map((f) => f.Properties.Code.S3Key).sort();
  assert.deepEqual(keys(Template.fromStack(stack)), keys(template));
});

test('the bundled handler loads the addon from its own platform package', () => {
  // Run where npm put things: the machine's architecture finds its package and
  // reaches the placeholder (dlopen refuses it: the package was found); the
  // other architecture's asset has no package for this machine, which the
  // loader says by name.
  const here = process.arch;
  if (!(here in PLATFORMS)) return;
  for (const f of Object.values(template.findResources('AWS::Lambda::Function'))) {
    const cpu = ARCH[f.Properties.Architectures[0]];
    const dir = assetDir(f);
    const r = spawnSync(process.execPath, ['-e', "require('./index.js')"], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.notEqual(r.status, 0);
    if (cpu === here) {
      assert.match(r.stderr, /ERR_DLOPEN_FAILED|invalid ELF header|file too short/);
      assert.match(r.stderr, new RegExp(`node_modules/linear-oauth-${PLATFORMS[here]}/linear-oauth\\.${PLATFORMS[here]}\\.node`));
    } else {
      assert.match(r.stderr, new RegExp(`no native addon for linux-${here} \\(glibc\\).*npm install linear-oauth-${PLATFORMS[here]}\``));
    }
  }
});

test('npm refuses a foreign platform package asked for by name, even with --cpu (why the main package is installed instead)', () => {
  const foreign = process.arch === 'arm64' ? 'x64' : 'arm64';
  const prefix = path.join(tmp, 'ebadplatform');
  fs.mkdirSync(prefix);
  const tgz = path.join(dist, `linear-oauth-${PLATFORMS[foreign]}-${version}.tgz`);
  const r = spawnSync('npm', ['install', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', '--os=linux', `--cpu=${foreign}`, '--libc=glibc', tgz], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /EBADPLATFORM/);
  assert.ok(!fs.existsSync(path.join(prefix, 'node_modules', `linear-oauth-${PLATFORMS[foreign]}`)));
});

test('bundling from the registry: the version, the function architecture, externals and user hooks kept', () => {
  const b = lo.linearOauthBundling({
    architecture: Architecture.ARM_64,
    bundling: {
      minify: true,
      externalModules: ['sharp'],
      commandHooks: { beforeBundling: () => ['echo before'], beforeInstall: () => [], afterBundling: () => ['echo mine'] },
    },
  });
  assert.equal(b.minify, true);
  assert.deepEqual(b.externalModules, ['sharp', 'linear-oauth']);
  assert.deepEqual(b.commandHooks.beforeBundling('/in', '/out'), ['echo before']);
  const cmds = b.commandHooks.afterBundling('/in', '/asset out');
  assert.equal(cmds[0], 'echo mine');
  const own = JSON.parse(fs.readFileSync(path.join(PKG, 'package.json'), 'utf8')).version;
  const install =
    `npm pkg set --prefix '/asset out' dependencies.linear-oauth=${own} && ` +
    `npm install --prefix '/asset out' --ignore-scripts --no-audit --no-fund --os=linux --cpu=arm64 --libc=glibc`;
  assert.deepEqual(cmds.slice(1), [
    `if [ -f '/asset out/package.json' ]; then ${install}; ` +
      `else echo '{"private":true}' > '/asset out/package.json' && ${install} && ` +
      `rm -f '/asset out/package.json' '/asset out/package-lock.json' '/asset out/node_modules/.package-lock.json'; fi`,
  ]);
  const x86 = lo.linearOauthBundling({ version: '9.9.9' });
  assert.deepEqual(x86.externalModules, ['@aws-sdk/*', 'linear-oauth']);
  const x86cmds = x86.commandHooks.afterBundling('/in', '/out');
  assert.equal(x86cmds.length, 1);
  assert.match(x86cmds[0], /npm pkg set --prefix \/out dependencies\.linear-oauth=9\.9\.9 && npm install --prefix \/out .* --cpu=x64 --libc=glibc && rm -f /);
  assert.doesNotMatch(x86cmds[0], /--offline/);
});

test('bundling refuses what would install the wrong addon', () => {
  assert.throws(() => lo.linearOauthBundling({ bundling: { nodeModules: ['linear-oauth'] } }), /leave 'linear-oauth' out of nodeModules/);
  const partial = path.join(tmp, 'partial');
  fs.mkdirSync(partial);
  fs.copyFileSync(path.join(dist, `linear-oauth-${version}.tgz`), path.join(partial, `linear-oauth-${version}.tgz`));
  fs.copyFileSync(path.join(dist, `linear-oauth-linux-x64-gnu-${version}.tgz`), path.join(partial, `linear-oauth-linux-x64-gnu-${version}.tgz`));
  assert.ok(lo.linearOauthBundling({ tarballDirectory: partial, architecture: Architecture.X86_64 }));
  assert.throws(
    () => lo.linearOauthBundling({ tarballDirectory: partial, architecture: Architecture.ARM_64 }),
    new RegExp(`no linear-oauth-linux-arm64-gnu-${version.replace(/\./g, '\\.')}\\.tgz in`),
  );
  assert.throws(() => lo.linearOauthBundling({ tarballDirectory: partial, version: '0.0.9' }), /must hold linear-oauth-0\.0\.9\.tgz/);
  assert.throws(() => lo.linearOauthBundling({ tarballDirectory: path.join(tmp, 'missing') }), /cannot read the tarball directory/);
  assert.throws(() => lo.platformPackage({ name: 'sparc' }), /no addon for the Lambda architecture sparc/);
});

test('grantAdmin on an existing table and a customer-managed key; a custom prefix', () => {
  const stack = new Stack(new App(), 'Admin');
  const key = new kms.Key(stack, 'SecretsKey');
  const table = dynamodb.Table.fromTableName(stack, 'Existing', 'linear-workspaces');
  const store = new lo.LinearOauth(stack, 'LinearOauth', { table, secretsKey: key, secretPrefix: 'acme-linear-' });
  assert.equal(store.environment.LINEAR_OAUTH_SECRET_PREFIX, 'acme-linear-');
  const role = new iam.Role(stack, 'Sweeper', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
  store.grantAdmin(role);
  const t = Template.fromStack(stack);
  assert.equal(Object.keys(t.findResources('AWS::DynamoDB::Table')).length, 0);
  const keyId = Object.keys(t.findResources('AWS::KMS::Key'))[0];
  const roleId = Object.keys(t.findResources('AWS::IAM::Role'))[0];
  assert.deepEqual(statementsOf(t, roleId), [
    {
      effect: 'Allow',
      actions: ['dynamodb:ConditionCheckItem', 'dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:UpdateItem'],
      resources: ['arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/linear-workspaces'],
      condition: undefined,
    },
    { effect: 'Allow', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [`\${${keyId}.Arn}`], condition: undefined },
    {
      effect: 'Allow',
      actions: [
        'secretsmanager:CreateSecret',
        'secretsmanager:DeleteSecret',
        'secretsmanager:GetSecretValue',
        'secretsmanager:PutSecretValue',
        'secretsmanager:UpdateSecretVersionStage',
      ],
      resources: ['arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:acme-linear-*'],
      condition: undefined,
    },
  ]);
  for (const s of allStatements(t)) for (const r of list(s.Resource)) assert.notEqual(r, '*');
});

test('LinearOauth refuses a prefix that would grant every secret, and table props with an existing table', () => {
  const stack = new Stack(new App(), 'Bad');
  assert.throws(() => new lo.LinearOauth(stack, 'A', { secretPrefix: '' }), /secretPrefix must be a non-empty/);
  assert.throws(() => new lo.LinearOauth(stack, 'B', { secretPrefix: 'x*' }), /without wildcards/);
  const table = dynamodb.Table.fromTableName(stack, 'T', 'linear-workspaces');
  assert.throws(() => new lo.LinearOauth(stack, 'C', { table, tableName: 'other' }), /cannot go with `table`/);
});

test("the READMEs' example stack is examples/app.ts", () => {
  const source = fs.readFileSync(path.join(PKG, 'examples', 'app.ts'), 'utf8');
  const block = /\/\/ README start\n([\s\S]*?)\/\/ README end\n/.exec(source)[1];
  for (const readme of [path.join(PKG, 'README.md'), path.join(NODE_HOST, 'README.md')]) {
    const blocks = [...fs.readFileSync(readme, 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    assert.ok(blocks.includes(block), `${readme} does not show examples/app.ts`);
  }
});

"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.LinearOauthFunction = exports.LinearOauth = exports.KMS_ACTIONS = exports.ADMIN_TABLE_ACTIONS = exports.ADMIN_SECRET_ACTIONS = exports.RESOLVE_TABLE_ACTIONS = exports.RESOLVE_SECRET_ACTIONS = exports.DEFAULT_SECRET_PREFIX = exports.PARTITION_KEY = void 0;
exports.platformPackage = platformPackage;
exports.linearOauthBundling = linearOauthBundling;
// CDK constructs for the aws store of linear-oauth: the registry table, the
// IAM a resolver needs, and NodejsFunction bundling that installs the native
// addon of the function's architecture, not the build machine's.
const fs = __importStar(require("node:fs"));
const path = __importStar(require("node:path"));
const aws_cdk_lib_1 = require("aws-cdk-lib");
const dynamodb = __importStar(require("aws-cdk-lib/aws-dynamodb"));
const iam = __importStar(require("aws-cdk-lib/aws-iam"));
const aws_lambda_1 = require("aws-cdk-lib/aws-lambda");
const aws_lambda_nodejs_1 = require("aws-cdk-lib/aws-lambda-nodejs");
const constructs_1 = require("constructs");
/** The registry's partition key in the existing deployment (crates/host/src/store/aws.rs). */
exports.PARTITION_KEY = 'linear_workspace_id';
/** The store's default `secret_prefix` (`LINEAR_OAUTH_SECRET_PREFIX`). */
exports.DEFAULT_SECRET_PREFIX = 'bgagent-linear-oauth-';
/**
 * What a resolver calls on the request path (README, "AWS"): reading a
 * secret, and a refresh's compare-and-swap write-back.
 */
exports.RESOLVE_SECRET_ACTIONS = Object.freeze([
    'secretsmanager:GetSecretValue',
    'secretsmanager:PutSecretValue',
    'secretsmanager:UpdateSecretVersionStage',
]);
/** The registry row, the refresh lease (a conditional UpdateItem) and the warm refresh's transaction check. */
exports.RESOLVE_TABLE_ACTIONS = Object.freeze([
    'dynamodb:GetItem',
    'dynamodb:UpdateItem',
    'dynamodb:ConditionCheckItem',
]);
/** Added by `grantAdmin`: setup, import and installClientCredentials create secrets; revoke --purge deletes one. */
exports.ADMIN_SECRET_ACTIONS = Object.freeze([
    'secretsmanager:CreateSecret',
    'secretsmanager:DeleteSecret',
]);
/** Added by `grantAdmin`: list, export, import, sweep and rotate-client-secret scan the registry. */
exports.ADMIN_TABLE_ACTIONS = Object.freeze(['dynamodb:Scan']);
/**
 * On a customer-managed key (README, "KMS"): Decrypt to read a secret,
 * GenerateDataKey for every refresh's PutSecretValue (without it reads work
 * and each refresh fails to store its rotated token).
 */
exports.KMS_ACTIONS = Object.freeze(['kms:Decrypt', 'kms:GenerateDataKey']);
/**
 * The aws store of linear-oauth: the DynamoDB registry (one item per
 * workspace, keyed `linear_workspace_id`, plus `lease#...` items) and the
 * Secrets Manager secrets under a name prefix, which setup creates.
 */
class LinearOauth extends constructs_1.Construct {
    table;
    secretPrefix;
    secretsKey;
    /**
     * `arn:<partition>:secretsmanager:<region>:<account>:secret:<prefix>*`:
     * Secrets Manager appends six random characters to a secret's ARN, hence
     * the `*` after the prefix.
     */
    secretArnPattern;
    constructor(scope, id, props = {}) {
        super(scope, id);
        if (props.table && (props.tableName !== undefined || props.removalPolicy !== undefined)) {
            throw new Error('LinearOauth: tableName and removalPolicy describe a created table; they cannot go with `table`');
        }
        this.secretPrefix = props.secretPrefix ?? exports.DEFAULT_SECRET_PREFIX;
        if (this.secretPrefix === '' || /[*?]/.test(this.secretPrefix)) {
            // An empty prefix would grant every secret of the account.
            throw new Error('LinearOauth: secretPrefix must be a non-empty name prefix without wildcards');
        }
        this.secretsKey = props.secretsKey;
        this.table =
            props.table ??
                new dynamodb.Table(this, 'Registry', {
                    tableName: props.tableName,
                    partitionKey: { name: exports.PARTITION_KEY, type: dynamodb.AttributeType.STRING },
                    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
                    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
                    removalPolicy: props.removalPolicy ?? aws_cdk_lib_1.RemovalPolicy.RETAIN,
                });
        this.secretArnPattern = aws_cdk_lib_1.Stack.of(this).formatArn({
            service: 'secretsmanager',
            resource: 'secret',
            resourceName: `${this.secretPrefix}*`,
            arnFormat: aws_cdk_lib_1.ArnFormat.COLON_RESOURCE_NAME,
        });
    }
    /** The variables `Resolver.fromEnv()` (and the CLI) read to open this store. */
    get environment() {
        return {
            LINEAR_OAUTH_STORE: 'aws',
            LINEAR_OAUTH_REGISTRY_TABLE: this.table.tableName,
            LINEAR_OAUTH_SECRET_PREFIX: this.secretPrefix,
        };
    }
    /** What resolve, resolveSecret, forceRefresh, reportUnauthorized and revoke (without purge) need. */
    grantResolve(grantee) {
        return this.grant(grantee, exports.RESOLVE_SECRET_ACTIONS, exports.RESOLVE_TABLE_ACTIONS);
    }
    /** `grantResolve` plus creating and deleting secrets and scanning the registry: setup, import, export, sweep, rotate-client-secret, revoke --purge. */
    grantAdmin(grantee) {
        return this.grant(grantee, [...exports.RESOLVE_SECRET_ACTIONS, ...exports.ADMIN_SECRET_ACTIONS], [...exports.RESOLVE_TABLE_ACTIONS, ...exports.ADMIN_TABLE_ACTIONS]);
    }
    grant(grantee, secretActions, tableActions) {
        let grant = iam.Grant.addToPrincipal({
            grantee,
            actions: [...secretActions],
            resourceArns: [this.secretArnPattern],
        }).combine(iam.Grant.addToPrincipal({ grantee, actions: [...tableActions], resourceArns: [this.table.tableArn] }));
        if (this.secretsKey) {
            grant = grant.combine(this.secretsKey.grant(grantee, ...exports.KMS_ACTIONS));
        }
        return grant;
    }
}
exports.LinearOauth = LinearOauth;
/** The package the addon of a Lambda architecture is in (its `os`/`cpu`/`libc` fields say so too). */
function platformPackage(architecture) {
    if (architecture.name === aws_lambda_1.Architecture.X86_64.name) {
        return { name: 'linear-oauth-linux-x64-gnu', cpu: 'x64' };
    }
    if (architecture.name === aws_lambda_1.Architecture.ARM_64.name) {
        return { name: 'linear-oauth-linux-arm64-gnu', cpu: 'arm64' };
    }
    throw new Error(`linear-oauth has no addon for the Lambda architecture ${architecture.name}`);
}
/**
 * NodejsFunction bundling for a handler that uses `linear-oauth`: the addon is
 * a native file, so `linear-oauth` stays external and, after esbuild, is
 * installed into the asset with `npm install --os=linux --cpu=<architecture>
 * --libc=glibc`. npm then picks the platform package among linear-oauth's
 * optionalDependencies for the function's architecture, whatever the build
 * machine's. (Naming the platform package itself would not do: npm checks a
 * package asked for by name against the real machine and fails with
 * EBADPLATFORM; `--force` would skip every check, the right ones too.)
 */
function linearOauthBundling(props = {}) {
    const base = props.bundling ?? {};
    if (base.nodeModules?.includes('linear-oauth')) {
        throw new Error("linearOauthBundling: leave 'linear-oauth' out of nodeModules: CDK would install the build machine's platform package");
    }
    const install = installCommands(props);
    const hooks = base.commandHooks;
    const commandHooks = {
        beforeBundling: (inputDir, outputDir) => hooks?.beforeBundling(inputDir, outputDir) ?? [],
        beforeInstall: (inputDir, outputDir) => hooks?.beforeInstall(inputDir, outputDir) ?? [],
        afterBundling: (inputDir, outputDir) => [...(hooks?.afterBundling(inputDir, outputDir) ?? []), ...install(outputDir)],
    };
    // NodejsFunction's default for Node 18+ runtimes, kept when extending.
    const external = base.externalModules ?? ['@aws-sdk/*'];
    return {
        ...base,
        externalModules: [...new Set([...external, 'linear-oauth'])],
        commandHooks,
    };
}
function installCommands(props) {
    const wanted = platformPackage(props.architecture ?? aws_lambda_1.Architecture.X86_64);
    const flags = ['--ignore-scripts', '--no-audit', '--no-fund', '--os=linux', `--cpu=${wanted.cpu}`, '--libc=glibc'];
    const settings = [];
    const checks = [];
    if (props.tarballDirectory !== undefined) {
        const dir = path.resolve(props.tarballDirectory);
        const tarballs = findTarballs(dir, props.version);
        if (!(wanted.name in tarballs.platforms)) {
            throw new Error(`linearOauthBundling: no ${wanted.name}-${tarballs.version}.tgz in ${dir} (make dist builds both)`);
        }
        settings.push(`dependencies.linear-oauth=file:${tarballs.main}`);
        // Every platform tarball there overrides linear-oauth's optional
        // dependency of that name; npm keeps only the one whose cpu matches.
        for (const [name, file] of Object.entries(tarballs.platforms)) {
            settings.push(`overrides.${name}=file:${file}`);
        }
        flags.push('--offline');
        const hint = `linear-oauth-cdk: ${dir} is not visible here (Docker bundling?); install esbuild to bundle locally`;
        checks.push(`if [ ! -d ${sh(dir)} ]; then echo ${sh(hint)} >&2; exit 1; fi`);
    }
    else {
        settings.push(`dependencies.linear-oauth=${props.version ?? ownVersion()}`);
    }
    flags.push(...(props.npmArgs ?? []));
    // One compound command each: CDK runs each hook command alone locally, and
    // joins them with && in Docker.
    return (outputDir) => {
        const manifest = sh(path.posix.join(outputDir, 'package.json'));
        const install = [
            `npm pkg set --prefix ${sh(outputDir)} ${settings.map(sh).join(' ')}`,
            `npm install --prefix ${sh(outputDir)} ${flags.map(sh).join(' ')}`,
        ].join(' && ');
        // npm needs a package.json for the overrides; one made here goes
        // afterwards with the lock files, which name the build machine's paths
        // (the asset hash is then the same wherever it is built). One that CDK
        // wrote for `nodeModules` stays, with linear-oauth added.
        const leftovers = ['package.json', 'package-lock.json', 'node_modules/.package-lock.json']
            .map((f) => sh(path.posix.join(outputDir, f)))
            .join(' ');
        return [
            ...checks,
            `if [ -f ${manifest} ]; then ${install}; else echo '{"private":true}' > ${manifest} && ${install} && rm -f ${leftovers}; fi`,
        ];
    };
}
function findTarballs(dir, version) {
    let names;
    try {
        names = fs.readdirSync(dir);
    }
    catch (e) {
        throw new Error(`linearOauthBundling: cannot read the tarball directory ${dir}: ${e.message}`);
    }
    // linear-oauth-<version>.tgz: a version starts with a digit, a platform package's name does not.
    const versions = names.flatMap((n) => /^linear-oauth-(\d[^/]*)\.tgz$/.exec(n)?.[1] ?? []);
    const chosen = version ?? (versions.length === 1 ? versions[0] : undefined);
    if (chosen === undefined || !versions.includes(chosen)) {
        throw new Error(`linearOauthBundling: ${dir} must hold linear-oauth-${version ?? '<version>'}.tgz ` +
            `(found versions: ${versions.join(', ') || 'none'}; pass \`version\` to choose)`);
    }
    const platforms = {};
    for (const cpu of ['x64', 'arm64']) {
        const name = `linear-oauth-linux-${cpu}-gnu`;
        const file = path.join(dir, `${name}-${chosen}.tgz`);
        if (fs.existsSync(file)) {
            platforms[name] = file;
        }
    }
    return { version: chosen, main: path.join(dir, `linear-oauth-${chosen}.tgz`), platforms };
}
function ownVersion() {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
    return pkg.version;
}
/** One POSIX shell word (the hooks run under bash, locally or in Docker). */
function sh(word) {
    return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
/**
 * A NodejsFunction on Node 22 whose asset carries the addon of its own
 * architecture, with the store's variables and its IAM grant.
 */
class LinearOauthFunction extends aws_lambda_nodejs_1.NodejsFunction {
    constructor(scope, id, props) {
        const { linearOauth, packages, admin, ...rest } = props;
        const architecture = rest.architecture ?? aws_lambda_1.Architecture.X86_64;
        super(scope, id, {
            ...rest,
            runtime: rest.runtime ?? aws_lambda_1.Runtime.NODEJS_22_X,
            architecture,
            bundling: linearOauthBundling({ ...packages, architecture, bundling: rest.bundling }),
            environment: { ...linearOauth.environment, ...rest.environment },
        });
        if (admin) {
            linearOauth.grantAdmin(this);
        }
        else {
            linearOauth.grantResolve(this);
        }
    }
}
exports.LinearOauthFunction = LinearOauthFunction;

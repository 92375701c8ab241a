/**
 * Test support for suites that use the psfile test provider (test/fixtures/provider, a resource
 * that is a local file) with the `filedrift` fixture project: build the provider once per
 * machine, install it into a sandbox's PULUMI_HOME, deploy a stack, and open that stack through
 * the Automation API the way the executor does (a project folder, the sandbox's backend).
 */
import { execFile } from 'node:child_process';
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalWorkspace, PulumiCommand, type Stack } from '@pulumi/pulumi/automation/index.js';
import { pulumiOk, type PulumiSandbox } from './pulumi.js';

const SETUP_SCRIPT = fileURLToPath(new URL('../../scripts/setup-test-provider.sh', import.meta.url));

/** The version test/fixtures/provider/main.go reports. */
export const PSFILE_VERSION = '0.1.0';

/** The fixture project whose resources are psfile files. */
export const FILEDRIFT = 'filedrift';

/** Runs scripts/setup-test-provider.sh (it builds once per machine) and returns the provider's binary. */
export function buildTestProvider(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [SETUP_SCRIPT], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const dir = stdout.trim();
      if (err !== null || dir === '') {
        reject(new Error(`bash scripts/setup-test-provider.sh failed (it needs Go >= 1.26 and the Go module proxy):\n${stderr}`, { cause: err }));
        return;
      }
      resolve(path.join(dir, 'pulumi-resource-psfile'));
    });
  });
}

/** Builds the provider when needed and installs it into the sandbox's PULUMI_HOME (no download). */
export async function installTestProvider(sandbox: PulumiSandbox): Promise<void> {
  const binary = await buildTestProvider();
  await pulumiOk(sandbox, ['plugin', 'install', 'resource', 'psfile', PSFILE_VERSION, '--file', binary]);
}

/** A deployed stack of the filedrift project: its name, project folder and the folder of its files. */
export interface FileStack {
  name: string;
  dir: string;
  files: string;
}

/** Copies the filedrift project as `name`, sets its config and deploys it with the CLI. */
export async function deployFileStack(sandbox: PulumiSandbox, name: string, replicas: number): Promise<FileStack> {
  const dir = await sandbox.copyFixture(FILEDRIFT, name);
  const files = path.join(sandbox.root, 'files', name);
  await pulumiOk(sandbox, ['stack', 'init', name], dir);
  await pulumiOk(sandbox, ['config', 'set', 'web:replicas', String(replicas), '--stack', name], dir);
  await pulumiOk(sandbox, ['config', 'set', 'web:dir', files, '--stack', name], dir);
  await pulumiOk(sandbox, ['up', '--yes', '--skip-preview', '--stack', name], dir);
  return { name, dir, files };
}

/** The URN of a psfile resource of the filedrift project. */
export function fileUrn(stack: FileStack, resource: string): string {
  return `urn:pulumi:${stack.name}::${FILEDRIFT}::psfile:index:File::${resource}`;
}

/**
 * The sandbox's CLI as a `PulumiCommand`. The SDK wants the folder above `bin/pulumi`; when the
 * CLI's folder is not named `bin`, a link named `bin` in the sandbox stands in for it.
 */
export async function sandboxCommand(sandbox: PulumiSandbox): Promise<PulumiCommand> {
  if (path.basename(sandbox.cliDir) === 'bin') return PulumiCommand.get({ root: path.dirname(sandbox.cliDir) });
  const root = path.join(sandbox.root, 'cli-root');
  await mkdir(root, { recursive: true });
  await symlink(sandbox.cliDir, path.join(root, 'bin')).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return PulumiCommand.get({ root });
}

/** Selects an existing stack of a project folder on the sandbox's backend, as the executor opens one. */
export async function selectFileStack(sandbox: PulumiSandbox, stack: FileStack): Promise<Stack> {
  return LocalWorkspace.selectStack(
    { stackName: stack.name, workDir: stack.dir },
    { pulumiCommand: await sandboxCommand(sandbox), envVars: { ...sandbox.pulumiEnv } },
  );
}

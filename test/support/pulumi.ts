/**
 * Test support for suites that drive the real Pulumi CLI: find the CLI, make a sandbox (a
 * `file://` backend, a PULUMI_HOME and a passphrase in a temp folder), copy fixture projects,
 * and read a stack's config and outputs back with the CLI itself, so assertions are about the
 * stack and never about logs.
 *
 * A missing CLI is a failure with the command that installs it, never a skip (DESIGN.md).
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The CLI version the repo pins (scripts/setup-pulumi.sh). */
export const PULUMI_VERSION = '3.276.0';

/** What to tell someone whose machine has no CLI. */
export const SETUP_HINT =
  'run scripts/setup-pulumi.sh (it installs or builds pulumi and pulumi-language-yaml and prints their folder), ' +
  'or set PULUMISCALE_PULUMI_DIR to a folder holding both';

/** The repo's fixture projects. */
export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/projects/', import.meta.url));

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where scripts/setup-pulumi.sh caches the CLI it installs or builds. */
export function cachedPulumiDir(): string {
  const root = process.env.PULUMISCALE_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'pulumiscale');
  return path.join(root, `pulumi-v${PULUMI_VERSION}`, 'bin');
}

/**
 * The folder holding `pulumi`: $PULUMISCALE_PULUMI_DIR, else the setup script's cache, else the
 * first on PATH. Throws, naming the setup script, when there is none or when the YAML language
 * host the fixtures need is neither beside it nor on PATH.
 */
export function findPulumiDir(): string {
  const pathDirs = (process.env.PATH ?? '').split(path.delimiter).filter((dir) => dir !== '');
  const candidates = [process.env.PULUMISCALE_PULUMI_DIR, cachedPulumiDir(), ...pathDirs].filter(
    (dir): dir is string => dir !== undefined && dir !== '',
  );
  const dir = candidates.find((candidate) => isExecutable(path.join(candidate, 'pulumi')));
  if (dir === undefined) {
    throw new Error(`no Pulumi CLI found (looked in ${candidates.slice(0, 2).join(', ')} and PATH): ${SETUP_HINT}`);
  }
  const yamlHost = [dir, ...pathDirs].some((candidate) => isExecutable(path.join(candidate, 'pulumi-language-yaml')));
  if (!yamlHost) {
    throw new Error(`pulumi found in ${dir} but no pulumi-language-yaml beside it or on PATH: ${SETUP_HINT}`);
  }
  return dir;
}

/** A throwaway Pulumi environment: backend, home, passphrase, and the CLI to use. */
export interface PulumiSandbox {
  /** The temp folder holding everything below. */
  root: string;
  /** The folder holding `pulumi`. */
  cliDir: string;
  /** `file://` URL of the sandbox's backend. */
  backendUrl: string;
  /**
   * The variables a Pulumi operation in the sandbox needs (backend, home, passphrase, no update
   * check); suitable for a PulumiScale config's `pulumi.env`.
   */
  pulumiEnv: Record<string, string>;
  /** A full environment for child processes: this process's, the CLI first on PATH, and `pulumiEnv`. */
  env: NodeJS.ProcessEnv;
  /** Copies `test/fixtures/projects/<name>` into the sandbox and returns the copy's path. */
  copyFixture(name: string, as?: string): Promise<string>;
  /** Removes the sandbox. */
  cleanup(): Promise<void>;
}

/** Creates a sandbox in a new temp folder. Throws with {@link SETUP_HINT} when there is no CLI. */
export async function createPulumiSandbox(): Promise<PulumiSandbox> {
  const cliDir = findPulumiDir();
  const root = await mkdtemp(path.join(tmpdir(), 'pulumiscale-test-'));
  const backendDir = path.join(root, 'backend');
  const home = path.join(root, 'home');
  await mkdir(backendDir);
  await mkdir(home);
  const backendUrl = `file://${backendDir}`;
  const pulumiEnv: Record<string, string> = {
    PULUMI_BACKEND_URL: backendUrl,
    PULUMI_HOME: home,
    PULUMI_CONFIG_PASSPHRASE: 'pulumiscale-test',
    PULUMI_SKIP_UPDATE_CHECK: 'true',
  };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...pulumiEnv,
    PATH: [cliDir, process.env.PATH ?? ''].join(path.delimiter),
  };
  return {
    root,
    cliDir,
    backendUrl,
    pulumiEnv,
    env,
    async copyFixture(name, as = name) {
      const dest = path.join(root, 'projects', as);
      await cp(path.join(FIXTURES_DIR, name), dest, { recursive: true });
      return dest;
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** What a CLI run produced. */
export interface PulumiRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pulumi ARGS --non-interactive` in the sandbox; resolves even when the CLI fails. */
export function runPulumi(sandbox: PulumiSandbox, args: readonly string[], cwd: string = sandbox.root): Promise<PulumiRun> {
  return new Promise((resolve, reject) => {
    execFile(
      path.join(sandbox.cliDir, 'pulumi'),
      [...args, '--non-interactive'],
      { cwd, env: sandbox.env, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number') {
          reject(new Error(`could not run ${sandbox.cliDir}/pulumi: ${err.message}`, { cause: err }));
          return;
        }
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
  });
}

/** Like {@link runPulumi}, but rejects with the CLI's output when it fails. */
export async function pulumiOk(sandbox: PulumiSandbox, args: readonly string[], cwd?: string): Promise<string> {
  const run = await runPulumi(sandbox, args, cwd);
  if (run.code !== 0) {
    throw new Error(`pulumi ${args.join(' ')} exited ${run.code}\n${run.stderr}\n${run.stdout}`);
  }
  return run.stdout;
}

/**
 * A stack's config value as `pulumi config` shows it, or null when the key is absent. Reads the
 * whole map so an absent key is told apart without matching an error message.
 */
export async function configGet(sandbox: PulumiSandbox, projectDir: string, stack: string, key: string): Promise<string | null> {
  const out = await pulumiOk(sandbox, ['config', '--json', '--show-secrets', '--stack', stack], projectDir);
  const config = JSON.parse(out) as Record<string, { value?: string }>;
  return config[key]?.value ?? null;
}

/**
 * A stack's outputs (`pulumi stack output --json`). `stack` may be fully qualified
 * (`organization/<project>/<stack>` on a file backend), which needs no project folder: that is
 * how an inline target's stack is read.
 */
export async function stackOutputs(sandbox: PulumiSandbox, stack: string, projectDir?: string): Promise<Record<string, unknown>> {
  const out = await pulumiOk(sandbox, ['stack', 'output', '--json', '--show-secrets', '--stack', stack], projectDir);
  return JSON.parse(out) as Record<string, unknown>;
}

/** The fully qualified name of a stack on a file backend. */
export function fileBackendStack(project: string, stack: string): string {
  return `organization/${project}/${stack}`;
}

/** The `pulumi:` section of a daemon config that runs in the sandbox (YAML, one block). */
export function pulumiSection(sandbox: PulumiSandbox, cliDir: string = sandbox.cliDir): string {
  return `pulumi:\n  backendUrl: ${sandbox.backendUrl}\n  cliDir: ${cliDir}\n  env: ${JSON.stringify(sandbox.pulumiEnv)}`;
}

/** A stack of the `simple` fixture project (project `web`) in its own folder. */
export interface FixtureStack {
  dir: string;
  name: string;
}

/** What an operator does with the CLI: set `web:replicas` and deploy it. */
export async function deployValue(sandbox: PulumiSandbox, stack: FixtureStack, value: number): Promise<void> {
  await pulumiOk(sandbox, ['config', 'set', 'web:replicas', String(value), '--stack', stack.name], stack.dir);
  await pulumiOk(sandbox, ['up', '--yes', '--skip-preview', '--stack', stack.name], stack.dir);
}

/**
 * A fresh copy of the `simple` project with a deployed stack `name` holding `value`: each test
 * its own stack, so none shares a lock or a value with another.
 */
export async function deployedStack(sandbox: PulumiSandbox, name: string, value: number): Promise<FixtureStack> {
  const dir = await sandbox.copyFixture('simple', name);
  await pulumiOk(sandbox, ['stack', 'init', name], dir);
  await deployValue(sandbox, { dir, name }, value);
  return { dir, name };
}

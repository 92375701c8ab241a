/**
 * A Pulumi CLI that hangs: a folder whose `pulumi` is a shell script that sleeps before it hands
 * some commands (`up`, `preview`) to the real CLI, beside a link to the real YAML language host.
 * The script ignores SIGINT, the signal a cancel sends, so it stands for a CLI that does not stop
 * when asked: only SIGKILL ends it.
 */
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PulumiSandbox } from './pulumi.js';

/** Makes the folder under the sandbox and returns it, for a config's `pulumi.cliDir`. */
export async function slowCli(sandbox: PulumiSandbox, opts: { commands: readonly string[]; seconds: number; name?: string; after?: boolean }): Promise<string> {
  const dir = path.join(sandbox.root, opts.name ?? `slow-cli-${opts.commands.join('-')}${opts.after ? '-after' : ''}`);
  await mkdir(dir, { recursive: true });
  const real = path.join(sandbox.cliDir, 'pulumi');
  // `after`: the real command runs first (taking and releasing the stack's lock), then the
  // script sleeps before it exits: a command whose work is done but whose caller has not heard.
  const slow = opts.after ? `"${real}" "$@"; rc=$?; sleep ${opts.seconds}; exit $rc` : `sleep ${opts.seconds}; break`;
  const script = [
    '#!/bin/sh',
    `# ${opts.after ? 'After' : 'Before'} ${opts.commands.join(', ')}: sleeps ${opts.seconds}s; otherwise the real CLI.`,
    "trap '' INT",
    'for arg in "$@"; do',
    '  case "$arg" in',
    `    ${opts.commands.join('|')}) ${slow} ;;`,
    '  esac',
    'done',
    `exec "${real}" "$@"`,
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'pulumi'), script);
  await chmod(path.join(dir, 'pulumi'), 0o755);
  await symlink(path.join(sandbox.cliDir, 'pulumi-language-yaml'), path.join(dir, 'pulumi-language-yaml')).catch(() => {});
  return dir;
}

/**
 * The `pulumiscale` command as an operator runs it: `validate` prints every problem with its
 * path and exits 1; usage errors exit 2.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, REPO, tempDir } from '../support/daemon.js';

function run(args: string[], cwd = REPO): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, PS_TEST_TOKEN: 'x' } }, (err, stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

describe('pulumiscale validate', () => {
  it('accepts the embedded default config', async () => {
    const r = await run(['validate', '--config', 'config/pulumiscale.yaml']);
    expect(r).toMatchObject({ code: 0, stdout: 'config/pulumiscale.yaml: OK (1 target: demo)\n' });
  });

  it('warns, without failing, about a workDir missing on this machine', async () => {
    const dir = tempDir('ps-cli-');
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, 'targets:\n  web: { workDir: ./infra/web, stack: prod, configKey: web:replicas, min: 2, max: 40 }\n');
    const r = await run(['validate', '--config', file]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[1]).toBe(`warning: targets.web.workDir: ${path.join(dir, 'infra/web')} does not exist on this machine`);
  });

  it('defaults to config/pulumiscale.yaml', async () => {
    expect((await run(['validate'])).code).toBe(0);
  });

  it('prints every problem with its path and exits 1', async () => {
    const dir = tempDir('ps-cli-');
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(
      file,
      `engine: { concurrency: 0 }
api: { bearerTokens: ["\${PS_UNSET_TOKEN}"] }
targets:
  web: { workDir: ./w, stack: prod, configKey: web:replicas, min: 5, max: 2, cooldown: { up: 10 } }
`,
    );
    const r = await run(['validate', '--config', file]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe(`${file}: 4 problems`);
    expect(lines.slice(1).map((l) => l.trim())).toEqual(
      expect.arrayContaining([
        'engine.concurrency: Too small: expected number to be >0',
        'api.bearerTokens.0: environment variable PS_UNSET_TOKEN is not set',
        'targets.web.max: must be >= min',
        'targets.web.cooldown.up: Invalid input: expected string, received number',
      ]),
    );
  });

  it('exits 1 for a missing file, naming it', async () => {
    const r = await run(['validate', '--config', '/nonexistent.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot read /nonexistent.yaml');
  });

  it.each([[['frobnicate']], [['serve', 'extra']], [[]], [['validate', '--bogus']]])('exits 2 on usage errors: %j', async (args) => {
    expect((await run(args)).code).toBe(2);
  });

  it('serve exits 1 on an invalid config without listening', async () => {
    const r = await run(['serve', '--config', '/nonexistent.yaml']);
    expect(r.code).toBe(1);
  });
});

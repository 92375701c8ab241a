/**
 * The Pulumi SDK loads the TypeScript compiler with the Automation API although the daemon never
 * uses it (src/pulumi/defer-typescript.ts). Checked in a fresh Node process, since a module cache
 * is per process: with the stand-in imported first, the Automation API loads without the
 * compiler, and a function serialized through the SDK still gets it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));

/** Runs an ES module script in a new Node process (TypeScript imports through tsx); returns its stdout as JSON. */
function run(script: string): unknown {
  const out = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`node exited ${out.status}: ${out.stderr}`);
  return JSON.parse(out.stdout.trim().split('\n').pop() ?? 'null');
}

const compilerLoaded = `Object.keys((await import('node:module')).createRequire(import.meta.url).cache).some((f) => /[\\\\/]typescript\\.js$/.test(f))`;

describe('the TypeScript compiler stays out of the daemon until something uses it', () => {
  it('the Automation API loads without it once the stand-in is in place', () => {
    const loaded = run(`
      await import('./src/pulumi/defer-typescript.ts');
      await import('@pulumi/pulumi/automation/index.js');
      console.log(JSON.stringify(${compilerLoaded}));
    `);
    expect(loaded).toBe(false);
  });

  it('without the stand-in, the Automation API loads it (what the stand-in is for)', () => {
    const loaded = run(`
      await import('@pulumi/pulumi/automation/index.js');
      console.log(JSON.stringify(${compilerLoaded}));
    `);
    expect(loaded).toBe(true);
  });

  it('a function serialized through the SDK still gets the real compiler', () => {
    const result = run(`
      await import('./src/pulumi/defer-typescript.ts');
      const { runtime } = await import('@pulumi/pulumi');
      const serialized = await runtime.serializeFunction(function add(a, b) { return a + b; });
      console.log(JSON.stringify({ text: serialized.text.includes('a + b'), loaded: ${compilerLoaded} }));
    `);
    expect(result).toEqual({ text: true, loaded: true });
  });
});

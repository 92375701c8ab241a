/**
 * Pulumi stacks for the benchmarks, in one sandbox (a `file://` backend and PULUMI_HOME in a
 * temp folder, test/support/pulumi.ts) shared by every figure: copies of the `simple` YAML
 * fixture project (no resources; it exports `web:replicas`), each with the stacks a figure needs.
 */
import { pulumiOk, type PulumiSandbox } from '../test/support/pulumi.js';

/** A project copy and the stacks made in it. */
export interface Project {
  dir: string;
  /**
   * A target line for the daemon's `targets:` (`  NAME: { workDir: …, stack: …, … }`), owning
   * `configKey` (default `web:replicas`) within [1, 100], with `extra` fields appended.
   */
  target(name: string, stack: string, opts?: { configKey?: string; extra?: string }): string;
}

/**
 * Copies the fixture project as `as` and creates `stacks` in it, each with `config` set
 * (plaintext), a few at a time.
 */
export async function project(sandbox: PulumiSandbox, as: string, stacks: readonly string[], config: Record<string, string>): Promise<Project> {
  const dir = await sandbox.copyFixture('simple', as);
  const pairs = Object.entries(config).flatMap(([k, v]) => ['--plaintext', `${k}=${v}`]);
  const make = async (stack: string) => {
    await pulumiOk(sandbox, ['stack', 'init', stack], dir);
    await pulumiOk(sandbox, ['config', 'set-all', '--stack', stack, ...pairs], dir);
  };
  for (let i = 0; i < stacks.length; i += 3) await Promise.all(stacks.slice(i, i + 3).map(make));
  return {
    dir,
    target: (name, stack, { configKey = 'web:replicas', extra = '' } = {}) =>
      `  ${name}: { workDir: ${JSON.stringify(dir)}, stack: ${stack}, configKey: ${configKey}, min: 1, max: 100${extra === '' ? '' : `, ${extra}`} }`,
  };
}

/**
 * Which Pulumi stack a target's config names, as one comparable key: backend, project, stack.
 *
 * Why all three: Pulumi locks a whole stack, and a stack is identified by its backend and its
 * fully qualified name (`org/project/stack`), not by the folder a project happens to sit in. Two
 * folders holding the same project (a copy, a checkout per team) on the same backend address
 * one stack and must be serialised; one folder used with two backends addresses two stacks. The
 * engine's one-operation-per-stack rule and the config's "one owner per key" rule both compare
 * these keys.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import type { Config } from './schema.js';

/** The part of a target the key depends on. */
export type StackKeySource = Pick<Config['targets'][string], 'workDir' | 'inline' | 'stack' | 'env'>;

/**
 * The backend a target's operations use, as the executor hands it to the CLI: the target's own
 * `env`, then `pulumi.backendUrl`, then `pulumi.env`, then the daemon's environment; the CLI's
 * stored login otherwise, which is one backend for every target of the daemon.
 */
export function backendOf(target: StackKeySource, pulumi: Config['pulumi'], env: NodeJS.ProcessEnv = process.env): string {
  const url = target.env.PULUMI_BACKEND_URL ?? pulumi.backendUrl ?? pulumi.env.PULUMI_BACKEND_URL ?? env.PULUMI_BACKEND_URL ?? '(the CLI login)';
  // `file:///state/` and `file:///state` are one backend.
  return url.replace(/\/+$/, '');
}

/**
 * The project name of a target: an inline target's `project`, else the `name` in the folder's
 * `Pulumi.yaml` (or `.yml`). A folder whose project file cannot be read is identified by its
 * resolved path, which is then as good a name as any: an operation on it will fail anyway.
 */
export function projectOf(target: Pick<StackKeySource, 'workDir' | 'inline'>): string {
  if (target.inline !== undefined) return target.inline.project;
  const dir = path.resolve(target.workDir ?? '.');
  for (const file of ['Pulumi.yaml', 'Pulumi.yml']) {
    try {
      const project = parse(readFileSync(path.join(dir, file), 'utf8')) as { name?: unknown } | null;
      if (typeof project?.name === 'string' && project.name !== '') return project.name;
    } catch {
      // Missing or unreadable: try the next spelling, then fall back to the path.
    }
  }
  return `dir:${dir}`;
}

/**
 * The stack key: `backend#project/stack`. A fully qualified name (`org/project/stack`) carries
 * its own project; the organisation is left out, so that `prod` and `organization/web/prod` in
 * project `web` on a file backend are one stack, as they are to Pulumi.
 */
export function stackKeyOf(target: StackKeySource, pulumi: Config['pulumi'], env: NodeJS.ProcessEnv = process.env): string {
  const parts = target.stack.split('/');
  const qualified = parts.length === 3 ? `${parts[1]}/${parts[2]}` : `${projectOf(target)}/${parts[parts.length - 1] ?? target.stack}`;
  return `${backendOf(target, pulumi, env)}#${qualified}`;
}

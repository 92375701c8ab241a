/**
 * The Automation API executor's helpers that hold no state: opening a stack (never creating one
 * unless asked), mapping CLI failures, restoring after a failed operation, reading the stack's
 * history, and parsing values. Split from automation.ts so that the executor reads as the
 * sequence of an operation.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import {
  LocalWorkspace,
  StackNotFoundError as SdkStackNotFoundError,
  type ConfigMap,
  type InlineProgramArgs,
  type LocalProgramArgs,
  type LocalWorkspaceOptions,
  type OpMap,
  type Stack,
} from '@pulumi/pulumi/automation/index.js';
import type { Logger } from 'pino';
import type { TargetConfig } from '../config/schema.js';
import { PulumiProgramError, PulumiScaleError, StackConfigError, StackNotFoundError } from '../errors.js';
import { toPulumiScaleError } from './error-mapping.js';

/** The keys a target owns (one today; the executor already sets and restores them as a set). */
export function configKeysOf(target: TargetConfig): readonly string[] {
  return [target.configKey, ...target.derived.map((d) => d.key)];
}

export function describe(target: TargetConfig): string {
  const where = target.workDir ?? `inline project ${target.inline?.project ?? '?'}`;
  return `${target.name} (stack ${target.stack} of ${where})`;
}

export type StackArgs = LocalProgramArgs | InlineProgramArgs;

/**
 * Selects the target's stack; creates it only when the target says `createStack: true`. A
 * missing stack is StackNotFoundError: a misspelt name must not become a new, empty stack that
 * the first alert would deploy the whole project into.
 */
export async function openStack(target: TargetConfig, args: StackArgs, opts: LocalWorkspaceOptions): Promise<Stack> {
  const what = `opening stack ${describe(target)}`;
  try {
    // The SDK overloads these on the program kind, so each kind is passed to its own overload.
    if ('program' in args) {
      return target.createStack ? await LocalWorkspace.createOrSelectStack(args, opts) : await LocalWorkspace.selectStack(args, opts);
    }
    return target.createStack ? await LocalWorkspace.createOrSelectStack(args, opts) : await LocalWorkspace.selectStack(args, opts);
  } catch (err) {
    if (err instanceof SdkStackNotFoundError) {
      throw new StackNotFoundError(
        `${target.name}: stack ${target.stack} does not exist (${what}); ${howToCreate(target)}, ` +
          'or set createStack: true on the target to let PulumiScale create it',
        { cause: err },
      );
    }
    throw toPulumiScaleError(err, what);
  }
}

/** How an operator creates a target's stack by hand. */
export function howToCreate(target: TargetConfig): string {
  if (target.inline !== undefined) {
    // An inline project has no folder to run the CLI in: name the stack in full.
    const name = target.stack.includes('/') ? target.stack : `organization/${target.inline.project}/${target.stack}`;
    return `create it with \`pulumi stack init ${name}\` (on a file backend; a Pulumi Cloud stack is <org>/${target.inline.project}/${target.stack})`;
  }
  return `create it with \`pulumi stack init ${target.stack}\` in ${target.workDir ?? 'the project folder'}`;
}

/**
 * Where a stack's settings file lives: the project folder, or its `stackConfigDir` when the
 * project sets one (the SDK reads the key but does not type it).
 */
export async function settingsDir(stack: Stack): Promise<string> {
  const workDir = stack.workspace.workDir;
  const settings = (await stack.workspace.projectSettings()) as { stackConfigDir?: unknown };
  return typeof settings.stackConfigDir === 'string' ? path.resolve(workDir, settings.stackConfigDir) : workDir;
}

/** How long a follow-up CLI call after an operation (restore, history) may take before it is killed. */
export const FOLLOW_UP_TIMEOUT_MS = 60_000;

/** Runs a CLI call, mapping its failure to a typed error. */
export async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toPulumiScaleError(err, what);
  }
}

/**
 * Runs `op`, then restores the previous config when it failed, and settles only after that. A
 * failed restore leaves the temporary value in the stack's config, so it surfaces as a
 * non-retryable error carrying both failures.
 */
export async function settle<T>(
  log: Logger,
  what: string,
  op: () => Promise<T>,
  restore: () => Promise<void>,
): Promise<T> {
  let outcome: { ok: true; value: T } | { ok: false; error: PulumiScaleError };
  try {
    outcome = { ok: true, value: await op() };
  } catch (err) {
    outcome = { ok: false, error: toPulumiScaleError(err, what) };
  }
  if (outcome.ok) return outcome.value;
  try {
    await restore();
  } catch (err) {
    const restoreError = toPulumiScaleError(err, 'restoring the previous config');
    log.error({ err: restoreError }, 'restoring the previous config failed; the stack config holds the temporary value');
    throw new PulumiProgramError(`${outcome.error.message}, but ${restoreError.message}; the stack config still holds the temporary value`, {
      cause: new AggregateError([outcome.error, err]),
    });
  }
  throw outcome.error;
}

/**
 * The changes of our update when the stack's history shows it succeeded: an update that started
 * since `since` (the history has one-second precision, hence the slack) with our values.
 */
export async function succeededSince(stack: Stack, since: Date, wanted: ConfigMap): Promise<OpMap | undefined> {
  try {
    const latest = await stack.info(true);
    const ours =
      latest?.kind === 'update' &&
      latest.result === 'succeeded' &&
      latest.startTime.getTime() >= since.getTime() - 1000 &&
      Object.entries(wanted).every(([key, entry]) => latest.config[key]?.value === entry.value);
    if (ours) return latest.resourceChanges ?? {};
  } catch {
    // Unknown is treated as failed: restoring is the safe default when nothing ran.
  }
  return undefined;
}

export function parseValue(target: TargetConfig, key: string, entry: { value: string; secret?: boolean }): number {
  const n = toNumber(entry.value);
  if (n === null) {
    const shown = entry.secret ? '[secret]' : JSON.stringify(entry.value);
    throw new StackConfigError(`${target.name}: ${key} in stack ${target.stack} is ${shown}, not a number`);
  }
  return n;
}

export function toNumber(value: string): number | null {
  const text = value.trim();
  const n = Number(text);
  return text === '' || !Number.isFinite(n) ? null : n;
}

export function countsOf(changes: OpMap): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [op, n] of Object.entries(changes)) if (typeof n === 'number') counts[op] = n;
  return counts;
}

export async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `name` in a folder of PATH, or undefined. */
export async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const file = path.join(dir, name);
    if (await isExecutable(file)) return file;
  }
  return undefined;
}

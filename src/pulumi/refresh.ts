/**
 * Refreshing a stack against the cloud, for drift detection: a preview-only refresh (what
 * changed outside Pulumi, state untouched) and a real one (the state takes the cloud's values,
 * run right before an `up` so that the up plans against the cloud as it is).
 *
 * Where the per-resource detail comes from: SDK 3.276's `Stack.previewRefresh` and
 * `Stack.refresh` return counts only (`changeSummary`, or the history's `resourceChanges`), but
 * both stream the engine's events to `onEvent`. A refresh reports each resource twice: a
 * `resourcePreEvent` with op `refresh` for every one, then a `resOutputsEvent` whose op is the
 * outcome: `same`, `update` (the cloud's values differ; `diffs` and `detailedDiff` name the
 * properties) or `delete` (the resource is gone). The outcome events are what is read here.
 *
 * - previewRefresh: `Stack.previewRefresh` (one CLI process, events over the SDK's gRPC stream).
 * - refreshStack: a raw `pulumi refresh --yes --skip-preview --event-log` through the
 *   workspace's own `PulumiCommand`, as up-command.ts runs `up`. `Stack.refresh` would do the
 *   same, then spend a second CLI process on `stack history` to fill in a summary that the events
 *   already hold (measured: about 0.4 s of its 0.9 s on the filedrift fixture), in the path of
 *   the `up` it precedes. An inline program's stack still goes through `Stack.refresh`: a
 *   refresh that runs the program (`--run-program`, PULUMI_RUN_PROGRAM in the target's env)
 *   needs the SDK's in-process language server, which only the SDK starts. So does a remote
 *   workspace, whose `--remote` arguments only the SDK adds.
 *
 * Errors are left as the SDK raises them (`ConcurrentUpdateError`, `CommandError`): the caller
 * wraps these calls in `CliGuard.unlocking`, which needs the SDK's class, and maps them once with
 * `call` (stack-helpers.ts), like every other operation of the executor.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PulumiCommand, Stack } from '@pulumi/pulumi/automation/index.js';
import { z } from 'zod';
import { PulumiProgramError } from '../errors.js';
import { runsDirectly } from './up-command.js';

/** What a refresh found: counts per change type (e.g. { update: 1, delete: 1 }), without `same`, and the resources that drifted. */
export interface DriftReport {
  /** Resources per change type, as the engine's summary counts them; `same` and zero counts are left out, so no drift is `{}`. */
  changes: Record<string, number>;
  /** The drifted resources (not the stack itself, not providers), sorted by URN. */
  resources: { urn: string; type: string; name: string; op: string; properties: string[] }[];
}

/** Preview-only refresh: state untouched. */
export async function previewRefresh(stack: Stack, signal?: AbortSignal): Promise<DriftReport> {
  signal?.throwIfAborted();
  const drift = new DriftCollector();
  await orReason(signal, () => stack.previewRefresh({ onEvent: (event) => drift.add(event), ...(signal ? { signal } : {}) }));
  // The SDK starts listening to the signal only once the CLI runs, after a few awaits of its
  // own; an abort in between lets the CLI run to the end. Nothing was written, so the cancel wins.
  signal?.throwIfAborted();
  return drift.report('refresh --preview-only');
}

/** Real refresh (`pulumi refresh --yes`): the state takes the cloud's values. Resolves with what changed. */
export async function refreshStack(stack: Stack, signal?: AbortSignal): Promise<DriftReport> {
  signal?.throwIfAborted();
  const drift = new DriftCollector();
  if (!oneProcess(stack)) {
    // An abort before the SDK spawns the CLI is missed and the refresh completes; its report
    // is then the truth, so it is returned rather than the abort.
    await orReason(signal, () => stack.refresh({ onEvent: (event) => drift.add(event), ...(signal ? { signal } : {}) }));
    return drift.report('refresh');
  }
  const ws = stack.workspace;
  const dir = await mkdtemp(path.join(tmpdir(), 'pulumiscale-refresh-'));
  try {
    const log = path.join(dir, 'events.jsonl');
    const args = ['refresh', '--yes', '--skip-preview', '--exec-kind', 'auto.local', '--event-log', log];
    args.push('--stack', stack.name, ...(await ws.serializeArgsForOp(stack.name)));
    // PULUMI_DEBUG_COMMANDS makes `--event-log` available, as the SDK's own operations set it.
    const env: Record<string, string> = { PULUMI_DEBUG_COMMANDS: 'true', ...(ws.pulumiHome === undefined ? {} : { PULUMI_HOME: ws.pulumiHome }), ...ws.envVars };
    // `run` hooks the signal synchronously when it spawns the CLI, so checking here leaves no
    // window in which an abort would be missed.
    signal?.throwIfAborted();
    await orReason(signal, () => (ws.pulumiCommand as Runner).run(args, ws.workDir, env, undefined, undefined, signal));
    await ws.postCommandCallback(stack.name);
    // The log is complete once the CLI has exited; a line cut short is skipped by `add`.
    for (const line of (await readFile(log, 'utf8').catch(() => '')).split('\n')) {
      if (line.trim() !== '') drift.add(parseLine(line));
    }
    return drift.report('refresh');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `PulumiCommand.run`, which every `Stack` operation calls, is internal in the SDK's typings
 * (as in up-command.ts; `runsDirectly` checks it is there).
 */
type Runner = PulumiCommand & {
  run(args: string[], cwd: string, env: Record<string, string>, onOutput?: unknown, onError?: unknown, signal?: AbortSignal): Promise<unknown>;
};

/** Runs a CLI call; when it fails after an abort (the CLI's exit on SIGINT is a CommandError), rejects with the abort's reason instead. */
async function orReason<T>(signal: AbortSignal | undefined, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}

/** Whether the refresh can be one bare CLI process: a project folder's stack, run locally. */
function oneProcess(stack: Stack): boolean {
  // `isRemote` is private in the SDK's typings; a remote workspace needs the SDK's `--remote` arguments.
  const ws = stack.workspace as Stack['workspace'] & { isRemote?: unknown };
  return ws.program === undefined && ws.isRemote !== true && runsDirectly(stack);
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

/** Outcomes that mean "in sync": `same`, and `refresh` should a CLI ever count by the step's own op. */
const IN_SYNC = new Set(['same', 'refresh']);

/** The part of a step's metadata read here; everything else in the event is ignored. */
const stepSchema = z.object({
  op: z.string(),
  urn: z.string().startsWith('urn:pulumi:'),
  type: z.string().optional(),
  diffs: z.array(z.string()).nullish(),
  detailedDiff: z.record(z.string(), z.unknown()).nullish(),
});

const summarySchema = z.object({ resourceChanges: z.record(z.string(), z.unknown()).nullish() });

type Step = z.infer<typeof stepSchema>;

/**
 * Gathers a refresh's outcome events into a {@link DriftReport}. The events come from the CLI,
 * so each is checked before use: one that does not parse is skipped. The counts come from the
 * summary event and nothing else, so drift is never reported as none because a resource's event
 * was malformed, and a refresh whose summary never came rejects rather than claim no drift.
 */
class DriftCollector {
  readonly #steps = new Map<string, Step>();
  #summary: Record<string, unknown> | undefined;

  add(event: unknown): void {
    if (typeof event !== 'object' || event === null) return;
    const { resOutputsEvent, summaryEvent } = event as { resOutputsEvent?: { metadata?: unknown }; summaryEvent?: unknown };
    const step = stepSchema.safeParse(resOutputsEvent?.metadata);
    // A resource refreshed twice (it should not be) keeps its last outcome.
    if (step.success) this.#steps.set(step.data.urn, step.data);
    const summary = summarySchema.safeParse(summaryEvent);
    if (summaryEvent !== undefined && summary.success) this.#summary = summary.data.resourceChanges ?? {};
  }

  report(what: string): DriftReport {
    if (this.#summary === undefined) {
      throw new PulumiProgramError(`pulumi ${what} reported no summary of its changes, so the drift is unknown`);
    }
    const changes: Record<string, number> = {};
    for (const [op, n] of Object.entries(this.#summary)) {
      if (!IN_SYNC.has(op) && typeof n === 'number' && Number.isInteger(n) && n > 0) changes[op] = n;
    }
    const resources: DriftReport['resources'] = [];
    for (const step of this.#steps.values()) {
      if (IN_SYNC.has(step.op)) continue;
      const { type, name } = partsOf(step.urn, step.type);
      // The stack resource and providers are Pulumi's own bookkeeping, not cloud resources.
      if (type === 'pulumi:pulumi:Stack' || type.startsWith('pulumi:providers:')) continue;
      // `diffs` names top-level properties; `detailedDiff` (property paths) fills in when a provider sends only that.
      const named = step.diffs !== undefined && step.diffs !== null && step.diffs.length > 0 ? step.diffs : Object.keys(step.detailedDiff ?? {});
      resources.push({ urn: step.urn, type, name, op: step.op, properties: [...new Set(named)].sort() });
    }
    resources.sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));
    return { changes, resources };
  }
}

/**
 * A resource's type and name from its URN, `urn:pulumi:<stack>::<project>::<parent types$type>::<name>`
 * (a name may itself hold `::`); the event's own `type` wins when it has one.
 */
function partsOf(urn: string, type: string | undefined): { type: string; name: string } {
  const parts = urn.split('::');
  const qualified = parts[2] ?? '';
  return { type: type ?? qualified.slice(qualified.lastIndexOf('$') + 1), name: parts.slice(3).join('::') };
}

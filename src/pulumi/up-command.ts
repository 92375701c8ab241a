/**
 * `pulumi up` of a project stack in one CLI process: the new config values go in as `--config`
 * flags (the CLI saves them to the stack's settings before it updates), and the change counts
 * come from the update's summary in its engine event log (`--event-log`, a file of one JSON
 * event per line, the flag `Stack.up` itself used before SDK 3.206 moved it to gRPC).
 *
 * Why not `Stack.setAllConfig` then `Stack.up`: those spawn four processes where the bare CLI
 * needs one or two (`config set-all`, `up`, then `stack output` and `stack history`, which
 * `Stack.up` always runs after the update to fill in outputs and a summary the daemon does not
 * use). Each costs the CLI's start, about 0.2 s, so one operation took 3.3x the bare CLI. This
 * still goes through the Automation API: the workspace's own `PulumiCommand`, with the
 * arguments, environment and error mapping (`ConcurrentUpdateError`, ...) that `Stack.up` uses,
 * and the CLI's usual output, which error messages quote.
 *
 * Only for stacks of a project folder with plain (not secret) values: a secret value cannot be
 * passed as a flag, and an inline program needs the SDK's in-process language server.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { OpMap, PulumiCommand, Stack } from '@pulumi/pulumi/automation/index.js';

/**
 * `PulumiCommand.run`, which every `Stack` operation calls, is marked internal in the SDK's
 * typings (SDK 3.276.0 is pinned); {@link runsDirectly} checks it is there before use.
 */
type Runner = PulumiCommand & {
  run(args: string[], cwd: string, env: Record<string, string>, onOutput?: unknown, onError?: unknown, signal?: AbortSignal): Promise<{ stdout: string; stderr: string; code: number }>;
};

/** Whether this SDK lets an `up` run as one process; when not, the caller sets the config and calls `Stack.up`. */
export function runsDirectly(stack: Stack): boolean {
  return typeof (stack.workspace.pulumiCommand as Partial<Runner>).run === 'function';
}

/**
 * Runs `up` with `values` saved to the stack's config first; resolves with the change counts
 * (empty when the CLI printed no summary). Only where {@link runsDirectly} holds.
 */
export async function upWithConfig(stack: Stack, values: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<OpMap> {
  const ws = stack.workspace;
  const dir = await mkdtemp(path.join(tmpdir(), 'pulumiscale-up-'));
  try {
    const log = path.join(dir, 'events.jsonl');
    const args = ['up', '--yes', '--skip-preview', '--exec-kind', 'auto.local', '--event-log', log];
    for (const [key, value] of Object.entries(values)) args.push('--config', `${key}=${value}`);
    args.push('--stack', stack.name, ...(await ws.serializeArgsForOp(stack.name)));
    // PULUMI_DEBUG_COMMANDS makes `--event-log` available, as Stack.up sets it.
    const env: Record<string, string> = { PULUMI_DEBUG_COMMANDS: 'true', ...(ws.pulumiHome === undefined ? {} : { PULUMI_HOME: ws.pulumiHome }), ...ws.envVars };
    await (ws.pulumiCommand as Runner).run(args, ws.workDir, env, undefined, undefined, signal);
    await ws.postCommandCallback(stack.name);
    return summaryOf(await readFile(log, 'utf8').catch(() => ''));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The resource changes of the summary event in an engine event log (one JSON event per line); empty when there is none. */
export function summaryOf(eventLog: string): OpMap {
  let summary: OpMap = {};
  for (const line of eventLog.split('\n')) {
    if (!line.includes('"summaryEvent"')) continue;
    try {
      const changes = (JSON.parse(line) as { summaryEvent?: { resourceChanges?: unknown } }).summaryEvent?.resourceChanges;
      if (typeof changes === 'object' && changes !== null) summary = changes;
    } catch {
      // A line cut short (the CLI killed mid-write) holds no summary.
    }
  }
  return summary;
}

/**
 * Drift checks: on a target's `drift.refresh.every`, its stack is looked at without changing
 * anything, through the same per-stack queue as scaling: a preview-only refresh finds resources
 * changed outside Pulumi, and a read of the driving key finds a value someone set by hand
 * (`pulumi config set` and `up`, a CI deploy from git putting the file's value back).
 *
 * What an owned key's drift leads to is the target's `drift.onDrift`: `report` records it,
 * `adopt` takes the stack's value as current, `revert` queues a command that puts the daemon's
 * value back with an `up`, the bounds in effect applying; while the direction's cooldown runs,
 * a revert waits for a later check. A drift state already reported is not reported again.
 *
 * Like runOperation, this decides and returns data; the engine stores and publishes it.
 */
import type { TargetConfig } from '../config/schema.js';
import type { DriftReport, Executor } from '../pulumi/executor.js';
import { activeCooldowns, pauses } from '../policy/decide.js';
import type { Command, DriftFinding, ScalingEvent, TargetRecord } from '../types.js';

/** At most this many drifted resources are named in one event (the counts cover them all). */
export const MAX_DRIFT_ITEMS = 50;

/** What a drift check found and what it leads to. */
export interface DriftOutcome {
  /** Whether anything differs (resources or the owned key). */
  drifted: boolean;
  /** The event to record, or null when the state was already reported (or is clean). */
  event: ScalingEvent | null;
  /** The state's signature, to tell a new drift from one already reported. */
  signature: string;
  /** With `adopt`: the stack's value, to take as current and as applied; else undefined. */
  adopt?: number | null;
  /** The command that puts the daemon's value back (`revert`), or null. */
  command: Command | null;
}

/** Checks one target; rejects with the executor's error when the stack cannot be looked at. */
export async function checkDrift(input: {
  executor: Executor;
  target: TargetConfig;
  record: TargetRecord;
  /** The signature of the drift state last reported (null: none). */
  reported: string | null;
  now: number;
  newId: () => string;
  dryRun: boolean;
  signal?: AbortSignal;
}): Promise<DriftOutcome> {
  const { target, record, now } = input;
  const found = await input.executor.checkDrift(target, input.signal ? { signal: input.signal } : {});
  // What the daemon last applied (reads of the stack do not change it); records of older
  // versions have only the value last read or written.
  const expected = record.applied === undefined ? record.current : record.applied;
  const keyDrift = expected !== null && found.value !== expected ? { key: target.configKey, expected, actual: found.value } : null;
  const resources = summarize(found.resources);
  const drifted = keyDrift !== null || Object.keys(resources.changes).length > 0;
  const signature = drifted ? JSON.stringify([resources.changes, resources.items.map((r) => [r.urn, r.op, r.properties]), keyDrift]) : '';
  const quiet: DriftOutcome = { drifted, event: null, signature, command: null };
  if (!drifted || signature === input.reported) return quiet;

  const onDrift = target.drift?.onDrift ?? 'report';
  let action: DriftFinding['action'] = keyDrift === null ? null : 'reported';
  let adopt: number | null | undefined;
  let command: Command | null = null;
  const at = new Date(now).toISOString();
  if (keyDrift !== null && onDrift === 'adopt') {
    action = 'adopted';
    adopt = keyDrift.actual;
  } else if (keyDrift !== null && onDrift === 'revert' && expected !== null && !input.dryRun) {
    const direction = expected > (keyDrift.actual ?? expected) ? 'up' : 'down';
    // A revert is a change like any other: it waits out its direction's cooldown and any pause
    // (a dry-run daemon only reports: its preview would not put anything back).
    const held = activeCooldowns(record.cooldownUntil, now)[direction] !== null || target.paused || pauses(record.pause, direction, now);
    if (!held) {
      action = 'reverting';
      command = {
        id: input.newId(),
        target: target.name,
        adjustment: { type: 'to', to: expected },
        dryRun: input.dryRun,
        source: 'engine',
        reason: `revert drift: ${target.configKey} was set to ${keyDrift.actual ?? 'unset'} outside PulumiScale; putting back ${expected}`,
        receivedAt: at,
        bounds: 'clamp',
        evidence: {},
      };
    } else {
      // Said once; a later check puts it back once the cooldown or pause is over.
      const waiting = `${signature}#held`;
      const event = input.reported === waiting ? null : driftEvent(input, target, at, { resources, key: keyDrift, action: 'reported' }, record);
      return { ...quiet, signature: waiting, event };
    }
  }
  return { drifted, event: driftEvent(input, target, at, { resources, key: keyDrift, action }, record), signature, command, ...(adopt === undefined ? {} : { adopt }) };
}

function driftEvent(input: { newId: () => string; dryRun: boolean }, target: TargetConfig, at: string, finding: DriftFinding, record: TargetRecord): ScalingEvent {
  const parts: string[] = [];
  const counts = Object.entries(finding.resources.changes).map(([op, n]) => `${op} ${n}`);
  if (counts.length > 0) parts.push(`resources changed outside Pulumi (${counts.join(', ')})`);
  if (finding.key !== null) parts.push(`${finding.key.key} is ${finding.key.actual ?? 'unset'} in the stack, ${finding.key.expected ?? 'unset'} expected`);
  const what = { adopted: '; adopted as current', reverting: '; putting it back', reported: '', none: '' }[finding.action ?? 'none'];
  return {
    id: input.newId(),
    target: target.name,
    at,
    kind: 'drift',
    from: finding.key === null ? record.current : finding.key.expected,
    to: finding.key?.actual ?? null,
    reason: `drift: ${parts.join('; ')}${what}`,
    source: 'engine',
    intents: 0,
    durationMs: 0,
    dryRun: input.dryRun,
    drift: finding,
  };
}

function summarize(report: DriftReport): DriftFinding['resources'] {
  return { changes: report.changes, items: report.resources.slice(0, MAX_DRIFT_ITEMS) };
}

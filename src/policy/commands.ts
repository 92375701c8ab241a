/**
 * Which queued operator commands the next operation covers. Commands are never dropped and
 * never merged into alert state; they run in arrival order. Consecutive commands may share one
 * operation only when the result equals running them one by one: each command of the batch,
 * decided from the value the previous one leaves, must itself be a change in the same direction
 * (`by 2` + `by 2` is `by 4`; `to 5` then `to 7` is `to 7`; `to 3` then `to 5` from 4 are two
 * operations, as each starts its own direction's cooldown). The first command that would be skipped ends the batch
 * and runs on its own next, so its own skip is recorded. A preview never shares an operation
 * with a real change, and previews, which change nothing, share one only when each would preview
 * the same change from the current value (three `up` previews from 3 are one preview of 3 -> 4,
 * not 3 -> 6).
 */
import type { Command, Decision, Pause } from '../types.js';
import { decideCommand, label, nothingToDo, signOf, type PolicyTarget } from './decide.js';

/** The next operation on a target's commands. */
export interface CommandPlan {
  /** The commands it covers, in order (at least one). */
  batch: Command[];
  /** What to do for all of them: one change from the current value, or the first one's skip. */
  decision: Decision;
}

function hasValues(c: Command): boolean {
  return c.adjustment.type === 'to' && c.adjustment.values !== undefined;
}

/** Plans the next operation from the queue; null when the queue is empty. Pure. */
export function planCommands(input: {
  queue: readonly Command[];
  current: number | null;
  target: PolicyTarget;
  pause: Pause | null;
  now: number;
  /** Every operation is a preview (`engine.dryRun`), whatever each command says. */
  previewAll?: boolean;
}): CommandPlan | null {
  const { queue, current, target, pause, now } = input;
  const previewAll = input.previewAll === true;
  const first = queue[0];
  if (first === undefined) return null;
  const firstDecision = decideCommand({ current, command: first, target, pause, now });
  if (firstDecision.kind === 'skip') return { batch: [first], decision: firstDecision };

  const batch = [first];
  const steps = [firstDecision];
  let value = firstDecision.to;
  // A preview changes nothing, so previews run one by one each start from the current value:
  // they share an operation only when each would preview the same change as the first.
  if (first.dryRun || previewAll) {
    for (const next of queue.slice(1)) {
      if ((!next.dryRun && !previewAll) || hasValues(first) || hasValues(next)) break;
      const d = decideCommand({ current, command: next, target, pause, now });
      if (d.kind === 'skip' || d.to !== firstDecision.to) break;
      batch.push(next);
    }
    if (batch.length === 1) return { batch, decision: firstDecision };
    return { batch, decision: { ...firstDecision, reason: `${batch.length} previews of the same change: ${firstDecision.reason}` } };
  }
  for (const next of queue.slice(1)) {
    if (next.dryRun !== first.dryRun) break;
    // A command that sets several keys runs alone: its values are its own.
    if (hasValues(first) || hasValues(next)) break;
    const d = decideCommand({ current: value, command: next, target, pause, now });
    // A command that turns back would start the other direction's cooldown and record a change
    // of its own when run alone: sharing the operation would not equal that.
    if (d.kind === 'skip' || d.direction !== firstDecision.direction) break;
    batch.push(next);
    steps.push(d);
    value = d.to;
  }
  if (batch.length === 1) return { batch, decision: firstDecision };

  const from = current ?? target.min;
  const why = `${batch.length} commands: ${steps.map((d) => d.reason).join('; ')}`;
  const direction = current === null ? 'up' : signOf(value - current);
  if (current !== null && direction === null) return { batch, decision: nothingToDo(why, current, value, null, target, 'net no change') };
  return {
    batch,
    decision: {
      kind: 'change',
      from,
      to: value,
      direction: direction ?? 'up',
      clamped: steps.some((d) => d.kind === 'change' && d.clamped),
      reason: `${why} => ${label(current)} -> ${value}`,
    },
  };
}

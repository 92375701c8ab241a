/**
 * Backtest: the signals and commands the daemon recorded, read back from its history and
 * replayed against a config, to show side by side what happened and what that config would
 * have done.
 *
 * What the history holds, and so what is replayed:
 * - a signal's start and each change of its value: every alert-driven decision lists the
 *   signals it was made from (`signals`), and a signal that starts or changes makes the next
 *   decision worth recording, so its first listing is when the engine first decided from it;
 * - a signal's end: the `ignored` event of its resolution (Alertmanager fingerprint, CloudWatch
 *   alarm name);
 * - an operator's command: the `changed` event it made, replayed as a `to` of the value it
 *   set, when its operation started (a schedule's are not: the config's schedules fire anew).
 * Not replayed: API pauses (no event records them), and the approvals and preview guard, which
 * the simulator does not model.
 * Inputs are placed when the engine acted on them (an event's time less its operation's
 * duration), so a replay of the same config with no operation time gives the same values.
 */
import type { ScalingEvent } from '../types.js';
import type { Scenario, SimulatedChange, TimedInput } from './simulate.js';

/** A history turned into a timeline, with the changes that were recorded. */
export interface Backtest {
  scenario: Scenario;
  recorded: SimulatedChange[];
}

/**
 * Builds the timeline of `target` from `events` (any order; those before `since` are left
 * out), ending at `until`. Null when the history holds nothing of the target since then.
 */
export function historyScenario(events: readonly ScalingEvent[], target: string, since: number, until: number): Backtest | null {
  const own = events
    .filter((e) => e.target === target && Date.parse(e.at) >= since && Date.parse(e.at) <= until && !e.dryRun)
    .toSorted((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const first = own[0];
  if (first === undefined) return null;
  const inputs: TimedInput[] = [];
  const active = new Map<string, { direction: string; value: number | null }>();
  const recorded: SimulatedChange[] = [];
  for (const e of own) {
    const started = Date.parse(e.at) - e.durationMs;
    for (const s of e.signals ?? []) {
      const known = active.get(s.id);
      if (known?.direction === s.direction && known.value === s.value) continue;
      active.set(s.id, { direction: s.direction, value: s.value });
      inputs.push({ at: started, kind: 'signal', signal: { id: s.id, direction: s.direction, value: s.value, threshold: s.threshold } });
    }
    if (e.kind === 'ignored') {
      for (const id of active.keys()) {
        if (!resolves(e, id)) continue;
        active.delete(id);
        inputs.push({ at: Date.parse(e.at), kind: 'resolve', id });
      }
    }
    // A schedule's changes are not replayed: the config's own schedules fire in the replay.
    const byCommand = e.commands !== undefined && e.commands.length > 0 && e.source !== 'schedule';
    if (e.kind === 'changed' && byCommand && e.to !== null) inputs.push({ at: started, kind: 'command', adjustment: { type: 'to', to: e.to } });
    if (e.kind === 'changed' && e.to !== null) recorded.push({ at: e.at, from: e.from, to: e.to, reason: e.reason });
  }
  const startAt = Math.min(since, ...inputs.map((i) => i.at));
  const startValue = own.find((e) => e.from !== null)?.from ?? null;
  return { scenario: { start: { at: startAt, value: startValue }, inputs, until }, recorded };
}

/** Whether an `ignored` event is the resolution of signal `id`. */
function resolves(event: ScalingEvent, id: string): boolean {
  const evidence = event.evidence ?? {};
  if (evidence.signal !== undefined) return evidence.signal === id;
  if (evidence.fingerprint !== undefined && evidence.fingerprint === id) return true;
  const alarm = evidence.alarmName;
  return alarm !== undefined && (id === `alarm:${alarm}` || id.endsWith(`:alarm:${alarm}`));
}

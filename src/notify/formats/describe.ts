/**
 * The words of a notification, shared by every chat format: what happened to which target, from
 * what value to what, why, and the details a person on call looks for (the signals or the
 * commands and who sent them, the schedule, how long it took, the error, the approval).
 *
 * Each format decides the layout and the limits of its platform; this module decides the words,
 * so that a Slack message and a Teams card of one event say the same thing. Pure: strings in,
 * strings out.
 *
 * Lengths here are UTF-16 code units (JavaScript's `length`). A platform that counts code points
 * counts no more than that, so text within a limit here is within it however the platform counts.
 */
import type { EventKind, ScalingEvent } from '../../types.js';

/** Ends a cut text, so a reader sees it was cut. */
export const ELLIPSIS = '…';

/**
 * Bounds on the short parts of a message. The target is a configured name and fact values are
 * mostly codes and numbers, but each comes from outside the formatter (a target named in an
 * `ignored` event, an id from a sender): the bounds give every format a known worst case.
 */
export const DESCRIBE_LIMITS = {
  /** Characters of the target name quoted in the title and summary. */
  target: 100,
  /** Characters of one fact's value. */
  fact: 256,
  /** Characters of one signal's id in its line. */
  signalId: 128,
} as const;

/**
 * `text` within `max` UTF-16 code units, the last of them `…` when anything was cut. It cuts
 * between code points: half a surrogate pair is not valid Unicode and some platforms refuse it.
 */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= ELLIPSIS.length) return max <= 0 ? '' : ELLIPSIS;
  let end = max - ELLIPSIS.length;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end) + ELLIPSIS;
}

/** Room kept for the closing line of {@link joinWithin} (`… and 99999 more`, with its separator). */
const MORE_ROOM = 24;

/**
 * `lines` joined by `sep` within `max` code units. When not all fit, as many whole lines as fit
 * are kept and a last line says how many were left out: 500 signals must not become 500 lines
 * cut mid-word, and the reader should know the list is longer.
 */
export function joinWithin(lines: readonly string[], max: number, sep = '\n'): string {
  const whole = lines.join(sep);
  if (whole.length <= max) return whole;
  const room = max - MORE_ROOM;
  const kept: string[] = [];
  let used = 0;
  for (const line of lines) {
    const add = (kept.length > 0 ? sep.length : 0) + line.length;
    if (used + add > room) break;
    kept.push(line);
    used += add;
  }
  // One line longer than the room: its start says more than "… and N more" alone.
  if (kept.length === 0 && lines[0] !== undefined && room > 0) kept.push(cut(lines[0], room));
  return cut([...kept, `… and ${lines.length - kept.length} more`].join(sep), max);
}

/** A labelled detail of a message (a Slack field, a Teams fact, a Discord field). */
export interface Fact {
  label: string;
  value: string;
}

/** How a message should look at a glance; each format maps it to its colours. */
export type Tone = 'good' | 'info' | 'warning' | 'danger' | 'neutral';

/** The approval part of a message, when the event carries one. */
export interface ApprovalWords {
  /** The approval id, as the buttons and `/api/v1/approvals/:id` need it (never cut). */
  id: string;
  status: string;
  /** The preview's resource changes, e.g. `update 1, replace 0`. */
  changes: string;
  /** When it expires unless decided, readable UTC. */
  expires: string;
  /** Who decided it, once decided. */
  decidedBy: string | null;
}

/** Everything a format needs to say about one event. */
export interface Description {
  /** One line, e.g. `web: 3 → 5 (changed)`. */
  title: string;
  /** One sentence of what happened. */
  summary: string;
  /** Why, as the event says it: not cut here, each format cuts it to its room. */
  reason: string;
  /** Short labelled details (at most 10, each value within {@link DESCRIBE_LIMITS}.fact). */
  facts: Fact[];
  /** One line per signal the decision was made from. */
  signals: string[];
  approval: ApprovalWords | null;
  /** The target's history in the daemon's API, or null without a public URL. */
  link: string | null;
  tone: Tone;
}

const KIND_WORDS: Record<EventKind, string> = {
  changed: 'changed',
  previewed: 'previewed',
  skipped: 'skipped',
  ignored: 'ignored',
  failed: 'failed',
  unlocked: 'unlocked',
  missed: 'missed',
  'awaiting-approval': 'awaiting approval',
  drift: 'drift',
};

const TONES: Record<EventKind, Tone> = {
  changed: 'good',
  previewed: 'info',
  skipped: 'neutral',
  ignored: 'neutral',
  failed: 'danger',
  unlocked: 'warning',
  missed: 'warning',
  'awaiting-approval': 'warning',
  drift: 'warning',
};

/** The values of a title: `3 → 5`, `? → 5` when the start is unknown, `3` when nothing was set. */
function values(from: number | null, to: number | null): string {
  if (to !== null) return `${from ?? '?'} → ${to}`;
  return from !== null ? String(from) : '?';
}

/** The one sentence of what happened; `t` is the (bounded) target name. */
function summary(event: ScalingEvent, t: string): string {
  const { from, to } = event;
  const span = to === null ? '' : from === null ? ` to ${to}` : ` from ${from} to ${to}`;
  switch (event.kind) {
    case 'changed':
      return `${t} changed${span}.`;
    case 'previewed':
      return `Preview: ${t} would change${span}; nothing was applied.`;
    case 'awaiting-approval':
      return `${t} would change${span} and waits for approval.`;
    case 'skipped':
      return `${t} was not changed${event.skipReason ? ` (${event.skipReason})` : ''}.`;
    case 'failed':
      return `Changing ${t}${span} failed${event.errorCode ? ` (${event.errorCode})` : ''}.`;
    case 'missed':
      return `A scheduled change of ${t}${span} was missed.`;
    case 'unlocked':
      return `A stale lock on the stack of ${t} was cleared.`;
    case 'ignored':
      return `Nothing was done for ${t}.`;
    case 'drift':
      return `The stack of ${t} changed outside PulumiScale${event.drift?.action ? ` (${event.drift.action})` : ''}.`;
  }
}

/** A duration as a person reads it: `350 ms`, `4.2 s`, `3 min 5 s`, `1 h 2 min`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return 'unknown';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** An ISO-8601 instant as `2026-11-27 10:15:00 UTC`; anything else as given (bounded). */
export function formatTime(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return cut(iso, DESCRIBE_LIMITS.fact);
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** The preview's resource changes, `update 1, replace 0`, in the order the preview gave them. */
export function formatChanges(changes: Readonly<Record<string, number>>): string {
  const parts = Object.entries(changes).map(([op, n]) => `${op} ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

/** The link to the target's history, `${publicUrl}/api/v1/events?target=<name>`, or null. */
export function historyLink(publicUrl: string | null, target: string): string | null {
  if (publicUrl === null || publicUrl.trim() === '') return null;
  // A configured `https://scaler.example.com/` must not give `//api`.
  return `${publicUrl.trim().replace(/\/+$/, '')}/api/v1/events?target=${encodeURIComponent(target)}`;
}

/** Who acted, as `alice (slack)`; an API token names no one, so it is just `api`. */
function actorWords(actor: NonNullable<ScalingEvent['evidence']>['actor']): string | null {
  if (!actor) return null;
  if (actor.via === 'api') return 'api';
  return `${actor.name || actor.id} (${actor.via})`;
}

function facts(event: ScalingEvent): Fact[] {
  const list: Fact[] = [];
  const add = (label: string, value: string | null | undefined) => {
    if (value !== null && value !== undefined && value !== '') list.push({ label, value: cut(value, DESCRIBE_LIMITS.fact) });
  };
  add('Value', event.from === null && event.to === null ? null : values(event.from, event.to));
  add('Source', event.dryRun && event.kind !== 'previewed' ? `${event.source} (dry run)` : event.source);
  add('Requested by', actorWords(event.evidence?.actor));
  const commands = event.commands ?? [];
  if (commands.length > 0) add('Commands', commands.length === 1 ? `1 (${commands[0]})` : `${commands.length}`);
  const schedule = event.evidence?.schedule;
  if (schedule) add('Schedule', schedule.fireAt ? `${schedule.name} (due ${formatTime(schedule.fireAt)})` : schedule.name);
  add('Rule', event.rule);
  if (event.durationMs > 0) add('Took', formatDuration(event.durationMs));
  add('Error', event.errorCode);
  add('Skip reason', event.skipReason);
  if (event.preview) add('Preview', formatChanges(event.preview));
  const drift = event.drift;
  if (drift) {
    const changed = drift.resources.items.map((r) => `${r.name} (${r.op}${r.properties.length > 0 ? `: ${r.properties.join(', ')}` : ''})`);
    add('Drifted resources', changed.length === 0 ? null : joinWithin(changed, DESCRIBE_LIMITS.fact, ', '));
    if (drift.key) add('Drifted key', `${drift.key.key}: ${drift.key.expected ?? 'unset'} expected, ${drift.key.actual ?? 'unset'} found`);
  }
  return list;
}

/** One line per signal: `<id> (alertmanager): up, value 91.5, threshold 80`. */
function signalLines(event: ScalingEvent): string[] {
  return (event.signals ?? []).map(
    (s) => `${cut(s.id, DESCRIBE_LIMITS.signalId)} (${s.source}): ${s.direction}, value ${s.value ?? 'unknown'}, threshold ${s.threshold ?? 'unknown'}`,
  );
}

function approvalWords(event: ScalingEvent): ApprovalWords | null {
  const a = event.approval;
  if (!a) return null;
  return {
    id: a.id,
    status: a.status,
    changes: cut(formatChanges(a.changes), DESCRIBE_LIMITS.fact),
    expires: formatTime(a.expiresAt),
    decidedBy: a.decidedBy ? actorWords(a.decidedBy) : null,
  };
}

/** The words of a message about `event`; `publicUrl` gives the history link (null: none). */
export function describeEvent(event: ScalingEvent, publicUrl: string | null): Description {
  const t = cut(event.target, DESCRIBE_LIMITS.target);
  return {
    title: `${t}: ${values(event.from, event.to)} (${KIND_WORDS[event.kind]})`,
    summary: summary(event, t),
    reason: event.reason,
    facts: facts(event),
    signals: signalLines(event),
    approval: approvalWords(event),
    link: historyLink(publicUrl, event.target),
    tone: TONES[event.kind],
  };
}

/**
 * Plain-text tables for the terminal: `pulumiscale status` (the targets, as the status page
 * shows them) and `pulumiscale simulate`. Columns are padded to their widest cell; the last
 * column is left ragged.
 */
import type { TargetState } from '../types.js';

/** Renders `head` and `rows` as aligned columns, one line each. */
export function columns(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

/** The targets' table: value, desired, bounds, what holds or moves each one. */
export function statusTable(states: readonly TargetState[], now: number): string {
  const rows = states.map((s) => {
    const bounds = `[${s.bounds.min}, ${s.bounds.max}]${s.bounds.source === 'config' ? '' : ` ${s.bounds.source}`}`;
    const holds = whatHolds(s, now);
    const next = s.schedules.filter((x) => x.next !== null).map((x) => `${x.name} ${x.next}`)[0] ?? '';
    const work = s.running ? 'running' : s.pendingCount > 0 ? `${s.pendingCount} queued` : '';
    return [s.name, String(s.current ?? '?'), String(s.desired?.value ?? '-'), bounds, String(s.signals.length), work, holds.join('; '), next];
  });
  return columns(['target', 'value', 'desired', 'bounds', 'alerts', 'work', 'held', 'next schedule'], rows);
}

/** What holds a target back now: its pause, its cooldowns, the error of its last read or operation. */
export function whatHolds(s: TargetState, now: number): string[] {
  return [
    s.paused ? (s.pause ? `paused until ${s.pause.until}${s.pause.direction === 'both' ? '' : ` (${s.pause.direction})`}` : 'paused') : null,
    s.cooldownUntil.up ? `up cooldown ${left(s.cooldownUntil.up, now)}` : null,
    s.cooldownUntil.down ? `down cooldown ${left(s.cooldownUntil.down, now)}` : null,
    s.error ? `error ${s.error.code}` : null,
  ].filter((x) => x !== null);
}

function left(iso: string, now: number): string {
  const s = Math.max(0, Math.round((Date.parse(iso) - now) / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}` : `${s}s`;
}

/**
 * What a benchmark reports: one row per figure, the daemon's value next to its baseline from
 * the same run, their ratio, the goal (issue #9) and whether it was met. A figure that could
 * not be measured is a missed goal, never a silent pass.
 */

/** One measured figure. */
export interface Row {
  /** What was measured, with its unit. */
  figure: string;
  /** The daemon's value. */
  daemon: number;
  /** The baseline's value from the same run, or null when the goal is absolute only. */
  baseline: number | null;
  /** How values print (e.g. `(v) => v.toFixed(0)`). */
  format: (v: number) => string;
  /** The goal as written in the table, e.g. `ratio >= 0.50` or `< 25 ms`. */
  goal: string;
  /** Whether the goal is met. */
  pass: boolean;
}

/** A figure that failed to run: listed as missed with the reason. */
export interface Failure {
  figure: string;
  error: string;
}

/** daemon / baseline, or null when there is no baseline (or it is 0) or no daemon value. */
export function ratioOf(row: Pick<Row, 'daemon' | 'baseline'>): number | null {
  if (row.baseline === null || row.baseline === 0 || !Number.isFinite(row.daemon)) return null;
  return row.daemon / row.baseline;
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Formats: whole numbers, milliseconds, MiB, percent. */
export const fmt = {
  int: (v: number) => Math.round(v).toLocaleString('en-US'),
  ms: (v: number) => `${v.toFixed(v < 10 ? 1 : 0)} ms`,
  mib: (v: number) => `${v.toFixed(0)} MiB`,
  pct: (v: number) => `${(v * 100).toFixed(1)}%`,
};

/** The table, aligned for a terminal and pasted as is into BENCHMARKS.md. */
export function table(rows: readonly Row[], failures: readonly Failure[]): string {
  const lines: string[][] = [['figure', 'daemon', 'baseline', 'ratio', 'goal', 'result']];
  for (const r of rows) {
    const ratio = ratioOf(r);
    lines.push([
      r.figure,
      r.format(r.daemon),
      r.baseline === null ? '-' : r.format(r.baseline),
      ratio === null ? '-' : `${ratio.toFixed(2)}x`,
      r.goal,
      r.pass ? 'pass' : 'FAIL',
    ]);
  }
  for (const f of failures) lines.push([f.figure, 'error', '-', '-', '-', 'FAIL']);
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  const text = lines.map((l) => l.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
  text.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  for (const f of failures) text.push(`error in "${f.figure}": ${f.error}`);
  return text.join('\n');
}

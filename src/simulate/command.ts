/**
 * `pulumiscale simulate`: reads a config and a timeline (or a Prometheus series, or the daemon's
 * history), runs the target's policy on a virtual clock, and prints the changes as a table or
 * as JSON (`{"changes": [{at, from, to, reason}], "final": N}`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { MAX_DURATION_MS, MAX_DURATION_TEXT, parseDuration } from '../config/duration.js';
import { loadConfig, targetsOf } from '../config/load.js';
import type { TargetConfig } from '../config/schema.js';
import { columns } from '../observe/status-table.js';
import type { ScalingEvent } from '../types.js';
import { historyScenario } from './backtest.js';
import { parseScenario, ScenarioError, seriesScenario } from './input.js';
import { simulate, type SimulatedChange, type SimulationResult } from './simulate.js';

/** The command's options, as parsed from the command line. */
export interface SimulateArgs {
  config: string;
  target: string | undefined;
  input: string | undefined;
  series: string | undefined;
  above: string | undefined;
  below: string | undefined;
  start: string | undefined;
  opSeconds: string | undefined;
  fromHistory: string | undefined;
  url: string | undefined;
  token: string | undefined;
  json: boolean;
}

/** A usage problem: said on stderr, exit 2. */
export class UsageError extends Error {}

/** Runs the command; resolves with the exit code (0 fine, 1 bad input, 2 usage). */
export async function simulateCommand(args: SimulateArgs, out: (text: string) => void): Promise<number> {
  const config = loadConfig(args.config);
  const targets = targetsOf(config);
  const target = pick(targets, args.target);
  const opSeconds = args.opSeconds === undefined ? 0 : Number(args.opSeconds);
  if (!Number.isFinite(opSeconds) || opSeconds < 0) throw new UsageError(`--op-seconds: "${args.opSeconds}" is not a number of seconds >= 0`);
  const opts = { opMs: Math.round(opSeconds * 1000), evaluationInterval: config.engine.evaluationInterval };
  const sources = [args.input, args.series, args.fromHistory].filter((s) => s !== undefined).length;
  if (sources !== 1) throw new UsageError('give exactly one of --input FILE, --series FILE or --from-history SINCE');

  if (args.fromHistory !== undefined) {
    const now = Date.now();
    const ago = parseDuration(args.fromHistory);
    if (ago !== null && ago > MAX_DURATION_MS) throw new UsageError(`--from-history: "${args.fromHistory}" is too long (at most ${MAX_DURATION_TEXT})`);
    const since = ago !== null ? now - ago : Date.parse(args.fromHistory);
    if (Number.isNaN(since)) throw new UsageError(`--from-history: "${args.fromHistory}" is neither a duration (24h) nor an ISO time`);
    let events: ScalingEvent[];
    if (args.url !== undefined) events = await eventsFromApi(args.url, args.token, target.name, since);
    else if (config.store.driver === 'sqlite') events = eventsFromFile(config.store.path, target.name, since);
    else throw new UsageError('--from-history reads the store file of a SQLite store; for another store, give the daemon with --url URL');
    const backtest = historyScenario(events, target.name, since, now);
    if (backtest === null) {
      out(args.json ? `${JSON.stringify({ recorded: [], simulated: { changes: [], final: null } })}\n` : `no history of ${target.name} since ${new Date(since).toISOString()}\n`);
      return 0;
    }
    const simulated = simulate(target, backtest.scenario, opts);
    out(args.json ? `${JSON.stringify({ recorded: backtest.recorded, simulated })}\n` : sideBySide(backtest.recorded, simulated));
    return 0;
  }
  const file = (args.input ?? args.series) as string;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ScenarioError([{ path: '', message: `${file}: ${err instanceof Error ? err.message : String(err)}` }]);
  }
  const scenario =
    args.series !== undefined
      ? seriesScenario(raw, { ...numberOpt('--above', args.above), ...numberOpt('--below', args.below), startValue: startValue(args.start, target.min) })
      : parseScenario(raw);
  const result = simulate(target, scenario, opts);
  out(args.json ? `${JSON.stringify(result)}\n` : `${table(result)}${notModelled(target, config.engine.dryRun)}`);
  return 0;
}

export { ScenarioError };

function pick(targets: TargetConfig[], name: string | undefined): TargetConfig {
  if (name === undefined) {
    if (targets.length === 1) return targets[0] as TargetConfig;
    throw new UsageError(`--target NAME is needed (targets: ${targets.map((t) => t.name).join(', ')})`);
  }
  const found = targets.find((t) => t.name === name);
  if (found === undefined) throw new UsageError(`--target: no target named "${name}" (targets: ${targets.map((t) => t.name).join(', ')})`);
  return found;
}

function startValue(text: string | undefined, min: number): number {
  if (text === undefined) return min;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) throw new UsageError(`--start: "${text}" is not a whole number >= 0`);
  return n;
}

function numberOpt(flag: string, text: string | undefined): { above?: number; below?: number } {
  if (text === undefined) return {};
  const n = Number(text);
  if (!Number.isFinite(n)) throw new UsageError(`${flag}: "${text}" is not a number`);
  return flag === '--above' ? { above: n } : { below: n };
}

/** A page at a time from `GET /api/v1/events`, newest first, until older than `since`. */
async function eventsFromApi(url: string, token: string | undefined, target: string, since: number): Promise<ScalingEvent[]> {
  const events: ScalingEvent[] = [];
  let before: string | undefined;
  for (;;) {
    const query = new URLSearchParams({ target, limit: '1000', ...(before ? { before } : {}) });
    const res = await fetch(`${url.replace(/\/$/, '')}/api/v1/events?${query.toString()}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (!res.ok) throw new Error(`GET /api/v1/events answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    const page = (await res.json()) as ScalingEvent[];
    events.push(...page);
    const oldest = page[page.length - 1];
    if (oldest === undefined || page.length < 1000 || Date.parse(oldest.at) < since) return events;
    before = oldest.id;
  }
}

/**
 * The history from the config's SQLite file, opened read-only: a backtest must never migrate,
 * purge or create the store of a daemon that may be running on it.
 */
function eventsFromFile(file: string, target: string, since: number): ScalingEvent[] {
  if (!existsSync(file)) throw new UsageError(`--from-history: no store file at ${file} (store.path); give the daemon with --url URL instead`);
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare('SELECT json, at FROM events WHERE target = :target ORDER BY seq DESC').all({ target });
    const events: ScalingEvent[] = [];
    for (const row of rows) {
      if (Date.parse(String(row.at)) < since) break;
      events.push(JSON.parse(String(row.json)) as ScalingEvent);
    }
    return events;
  } finally {
    db.close();
  }
}

/** What the simulator leaves out for this target, said under the table. */
function notModelled(target: TargetConfig, dryRun: boolean): string {
  const left = [
    target.approval ? 'approvals (each change here would wait for a person)' : null,
    target.guard ? 'the preview guard' : null,
    dryRun ? 'engine.dryRun (the daemon would only preview these changes)' : null,
  ].filter((x) => x !== null);
  return left.length === 0 ? '' : `note: not simulated: ${left.join('; ')}\n`;
}

function table(result: SimulationResult): string {
  const rows = result.changes.map((c) => [c.at, String(c.from ?? '-'), String(c.to), c.reason]);
  return `${columns(['at', 'from', 'to', 'reason'], rows)}final: ${result.final ?? 'unknown'}\n`;
}

function sideBySide(recorded: SimulatedChange[], simulated: SimulationResult): string {
  const n = Math.max(recorded.length, simulated.changes.length);
  const rows = Array.from({ length: n }, (_, i) => {
    const r = recorded[i];
    const s = simulated.changes[i];
    return [r?.at ?? '', r ? `${r.from ?? '-'} -> ${r.to}` : '', s?.at ?? '', s ? `${s.from ?? '-'} -> ${s.to}` : '', r && s && r.to === s.to ? '' : 'differs'];
  });
  return `${columns(['recorded at', 'recorded', 'simulated at', 'simulated', ''], rows)}final: recorded ${recorded.at(-1)?.to ?? '-'}, simulated ${simulated.final ?? 'unknown'}\n`;
}

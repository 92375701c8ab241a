/**
 * `pulumiscale simulate` as an operator runs it: a timeline file, a Prometheus series, bad input
 * and usage; and a backtest: a scenario run end to end on the real CLI (signals and commands
 * over a minute), then replayed from the daemon's history against the same config, gives the
 * same sequence of values.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScalingEvent } from '../../src/types.js';
import { CLI, settledAt, startDaemonProcess, targetEvents, tempDir, until } from '../support/daemon.js';
import { createPulumiSandbox, deployedStack, type PulumiSandbox } from '../support/pulumi.js';
import { fixture } from '../support/sns.js';

function run(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd }, (err, stdout, stderr) => {
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

const CONFIG = `
targets:
  web:
    workDir: ./infra/web
    stack: prod
    configKey: web:replicas
    min: 1
    max: 40
    cooldown: { up: 60s, down: 0s }
    steps:
      up: { bands: [{ from: 70, to: 90, by: 2 }, { from: 90, by: 5 }] }
`;

/** The input. */
const EXAMPLE = fixture('simulate/issue-example.json');
/** What the example gives: the same at every entry point (policy, API, CLI). */
const EXPECTED = fixture<{ changes: { at: string; from: number; to: number }[]; final: number }>('simulate/issue-example.expected.json');

describe('pulumiscale simulate', () => {
  const dir = tempDir('ps-sim-');
  const config = path.join(dir, 'c.yaml');
  writeFileSync(config, CONFIG);
  const write = (name: string, body: unknown): string => {
    const file = path.join(dir, name);
    writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
    return file;
  };

  it("prints the issue's example as JSON", async () => {
    const r = await run(['simulate', '--config', config, '--target', 'web', '--input', write('in.json', EXAMPLE), '--json'], dir);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { changes: { at: string; from: number; to: number }[]; final: number };
    expect(out).toMatchObject(EXPECTED);
  });

  it('prints a readable table by default', async () => {
    const r = await run(['simulate', '--config', config, '--input', write('in2.json', EXAMPLE)], dir);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^at\s+from\s+to\s+reason$/);
    expect(lines[1]).toMatch(/^2026-11-29T10:00:00.000Z\s+2\s+7\s+signal cpu/);
    expect(lines.at(-1)).toBe('final: 3');
  });

  it('replays a Prometheus range query with --above', async () => {
    const t0 = Date.parse('2026-11-29T10:00:00Z') / 1000;
    const matrix = { status: 'success', data: { resultType: 'matrix', result: [{ metric: { __name__: 'cpu' }, values: [[t0, '95'], [t0 + 60, '95'], [t0 + 90, '30']] }] } };
    const r = await run(['simulate', '--config', config, '--series', write('series.json', matrix), '--above', '80', '--start', '2', '--json'], dir);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { changes: { to: number }[] }).changes.map((c) => c.to)).toEqual([7, 12]);
  });

  it('a bad timeline exits 1 with every problem and its path', async () => {
    const bad = { start: { at: '2026-11-29T10:00:00Z', value: 2 }, inputs: [{ at: 'soon', signal: { id: 'cpu', direction: 'sideways' } }] };
    const r = await run(['simulate', '--config', config, '--input', write('bad.json', bad)], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('until:');
    expect(r.stderr).toContain('inputs.0.at:');
    expect(r.stderr).toContain('inputs.0.signal.direction:');
  });

  it.each<[string, string[], number, string]>([
    ['no input at all is usage (2)', ['simulate', '--config', 'c.yaml'], 2, 'give exactly one of --input FILE'],
    ['an unknown target is usage (2)', ['simulate', '--config', 'c.yaml', '--target', 'nope', '--input', 'in.json'], 2, 'no target named "nope"'],
    ['--series without a threshold is a bad input (1)', ['simulate', '--config', 'c.yaml', '--series', 'any-series.json'], 1, 'give --above X, --below Y, or both'],
    // It printed "Invalid time value" and exited 1.
    ['--from-history past any date is usage (2)', ['simulate', '--config', 'c.yaml', '--from-history', '100000000d'], 2, '--from-history: "100000000d" is too long (at most 36500d)'],
  ])('%s', async (_name, args, code, message) => {
    write('in.json', EXAMPLE);
    write('any-series.json', { status: 'success', data: { resultType: 'matrix', result: [] } });
    const r = await run(args, dir);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(message);
  });
});

describe('backtest on the real CLI', () => {
  let sandbox: PulumiSandbox;
  beforeAll(async () => {
    sandbox = await createPulumiSandbox();
  });
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('a run of signals and commands, replayed from the history with the same config, gives the same values', async () => {
    const stack = await deployedStack(sandbox, 'backtest', 2);
    const config = {
      server: { host: '127.0.0.1', port: 0 },
      engine: { evaluationInterval: '1s' },
      store: { path: './backtest.db' },
      pulumi: { backendUrl: sandbox.backendUrl, cliDir: sandbox.cliDir, env: sandbox.pulumiEnv },
      targets: { web: { workDir: stack.dir, stack: stack.name, configKey: 'web:replicas', min: 1, max: 10, cooldown: { up: '10s', down: '0s' } } },
    };
    const file = path.join(sandbox.root, 'backtest.json');
    writeFileSync(file, JSON.stringify(config));
    const d = await startDaemonProcess(sandbox.root, JSON.stringify(config), sandbox.env);
    const recorded: number[] = [];
    try {
      const base = fixture<{ alerts: (Record<string, unknown> & { labels: Record<string, string> })[] }>('alertmanager/notification-firing.json');
      const alert = { ...base.alerts[0], labels: { ...base.alerts[0]?.labels, pulumiscale_target: 'web' }, fingerprint: 'backtest-cpu' };
      expect((await d.request('POST', '/webhooks/alertmanager', { ...base, alerts: [alert] })).status).toBe(202);
      // Two steps, the second after the up cooldown; resolved before a third.
      await settledAt(d, 4);
      const resolved = { ...alert, status: 'resolved', endsAt: new Date().toISOString() };
      expect((await d.request('POST', '/webhooks/alertmanager', { ...base, status: 'resolved', alerts: [resolved] })).status).toBe(202);
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to: 2 })).status).toBe(202);
      await settledAt(d, 2);
      expect((await d.request('POST', '/api/v1/targets/web/scale', { by: 5 })).status).toBe(202);
      await settledAt(d, 7);
      recorded.push(...(await targetEvents(d)).filter((e: ScalingEvent) => e.kind === 'changed').reverse().map((e) => e.to as number));
      expect(recorded).toEqual([3, 4, 2, 7]);

      const r = await until(async () => {
        const out = await run(['simulate', '--config', file, '--target', 'web', '--from-history', '10m', '--url', d.url, '--json'], sandbox.root);
        return out.code === 0 ? out : undefined;
      }, 'the backtest');
      const backtest = JSON.parse(r.stdout) as { recorded: { to: number }[]; simulated: { changes: { to: number }[]; final: number } };
      expect(backtest.recorded.map((c) => c.to)).toEqual(recorded);
      expect(backtest.simulated.changes.map((c) => c.to)).toEqual(recorded);
      expect(backtest.simulated.final).toBe(7);
    } finally {
      expect(await d.stop('SIGTERM')).toBe(0);
    }
    // From the store file as well, with the daemon stopped.
    const fromStore = await run(['simulate', '--config', file, '--target', 'web', '--from-history', '10m', '--json'], sandbox.root);
    expect(fromStore.code).toBe(0);
    expect((JSON.parse(fromStore.stdout) as { simulated: { changes: { to: number }[] } }).simulated.changes.map((c) => c.to)).toEqual(recorded);
  });
});

/**
 * What a hostile or misconfigured sender can make the daemon keep: made-up target names must
 * not become history partitions or metric series, and one alert's size must not become one
 * event's size. The real wiring (startDaemon: SQLite store, engine, bus, metrics, buildApp)
 * around a fake executor, driven through `app.inject()`.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { startDaemon, type Daemon } from '../../src/daemon.js';
import { UNKNOWN_TARGET } from '../../src/sources/common.js';
import { EVIDENCE_LIMITS } from '../../src/sources/evidence.js';
import type { ScalingEvent, TargetState } from '../../src/types.js';
import { FakeExecutor } from '../support/fake-executor.js';

const CONFIGURED = ['web', 'worker'];

let daemon: Daemon | undefined;
afterEach(async () => {
  await daemon?.drain();
  daemon = undefined;
});

async function start(bodyLimit = '1mb'): Promise<Daemon> {
  const config = parseConfig(
    `
server: { host: 127.0.0.1, port: 0, bodyLimit: ${bodyLimit} }
store: { path: ":memory:" }
targets:
  web: { workDir: /srv/web, stack: prod, configKey: web:replicas, min: 1, max: 9, cooldown: { up: 0s, down: 0s } }
  worker: { workDir: /srv/worker, stack: prod, configKey: worker:replicas, min: 1, max: 9 }
`,
    { file: 'hostile-test.yaml', baseDir: '/', env: {} },
  );
  const exec = new FakeExecutor();
  exec.values.set('web', 2);
  daemon = await startDaemon(config, { executor: exec, logger: pino({ level: 'silent' }), port: 0 });
  return daemon;
}

function alert(labels: Record<string, string>, i: number, status = 'firing') {
  return { status, labels: { alertname: `Alert${i}`, ...labels }, annotations: {}, startsAt: '2026-11-27T09:55:00Z', fingerprint: `fp${i}` };
}

/** One alert for `web` (so the notification is accepted) and `count` for made-up targets. */
function notification(n: number, count: number) {
  const alerts = [alert({ pulumiscale_target: 'web' }, 0), ...Array.from({ length: count }, (_, i) => alert({ pulumiscale_target: `made-up-${n}-${i}` }, i + 1))];
  return { version: '4', receiver: 'pulumiscale', status: 'firing', alerts };
}

async function post(d: Daemon, body: unknown) {
  return d.app.inject({ method: 'POST', url: '/webhooks/alertmanager', payload: body as object });
}

/** The whole history, newest first, page after page. */
async function history(d: Daemon): Promise<ScalingEvent[]> {
  const all: ScalingEvent[] = [];
  for (;;) {
    const before = all.length > 0 ? `&before=${all.at(-1)?.id ?? ''}` : '';
    const page = (await d.app.inject({ url: `/api/v1/events?limit=1000${before}` })).json<ScalingEvent[]>();
    if (page.length === 0) return all;
    all.push(...page);
  }
}

async function metricsText(d: Daemon): Promise<string> {
  return (await d.app.inject({ url: '/metrics' })).body;
}

describe('made-up target names', () => {
  it('20 notifications of 50 made-up names each store their refusals under (unknown) only', async () => {
    const d = await start();
    for (let n = 0; n < 20; n++) {
      const res = await post(d, notification(n, 50));
      expect(res.statusCode).toBe(202);
      expect(res.json<{ rejected: unknown[] }>().rejected).toHaveLength(50);
    }
    const events = await history(d);
    const targets = new Set(events.map((e) => e.target));
    expect(targets.size).toBeLessThanOrEqual(CONFIGURED.length + 1);
    expect(events.filter((e) => e.errorCode === 'PS_TARGET_UNKNOWN').map((e) => e.target)).toEqual(Array(1000).fill(UNKNOWN_TARGET));
    // The name asked for is still there to read, in the reason.
    expect(events.find((e) => e.errorCode === 'PS_TARGET_UNKNOWN')?.reason).toMatch(/names target "made-up-19-49"/);
  });

  it('re-sent alerts refresh their signals: one per alert on its target, none for the refused ones', async () => {
    const d = await start();
    for (let n = 0; n < 20; n++) expect((await post(d, notification(n, 5))).statusCode).toBe(202);
    const states = (await d.app.inject({ url: '/api/v1/targets' })).json<TargetState[]>();
    expect(states.map((s) => [s.name, s.signals.map((sig) => sig.id)])).toEqual([
      ['web', ['fp0']],
      ['worker', []],
    ]);
  });

  it('/metrics has no series labelled with a made-up name, and counts them under (unknown)', async () => {
    const d = await start();
    for (let n = 0; n < 3; n++) expect((await post(d, notification(n, 50))).statusCode).toBe(202);
    const text = await metricsText(d);
    expect(text).not.toContain('made-up');
    expect(text).toMatch(/^pulumiscale_events_total\{target="\(unknown\)",kind="ignored"\} 150$/m);
    const targetLabels = new Set([...text.matchAll(/target="([^"]*)"/g)].map((m) => m[1]));
    for (const label of targetLabels) expect([...CONFIGURED, UNKNOWN_TARGET]).toContain(label);
  });

  it('a refused request to a made-up path is counted under its route, "unmatched", not under the path', async () => {
    const d = await start();
    expect((await d.app.inject({ url: '/made-up-path-1?x=1' })).statusCode).toBe(404);
    expect((await d.app.inject({ method: 'POST', url: '/webhooks/alertmanager/made-up-path-2' })).statusCode).toBe(404);
    const text = await metricsText(d);
    expect(text).not.toContain('made-up-path');
    expect(text).toMatch(/^pulumiscale_http_refused_total\{route="unmatched",code="PS_NOT_FOUND"\} 2$/m);
  });
});

describe('a hostile alert (1000 labels of 10 kB)', () => {
  it('is stored as an event of bounded size, with its routing labels and the cut marked', async () => {
    const d = await start('16mb');
    const labels: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) labels[`label_${i}`] = 'v'.repeat(10_000);
    const body = { version: '4', receiver: 'pulumiscale', status: 'resolved', alerts: [alert({ ...labels, pulumiscale_target: 'web' }, 0, 'resolved')] };
    expect((await post(d, body)).statusCode).toBe(202);
    const [event] = await history(d);
    expect(event).toMatchObject({ kind: 'ignored', target: 'web' });
    expect(Object.keys(event?.evidence?.labels ?? {})).toHaveLength(EVIDENCE_LIMITS.labels);
    expect(event?.evidence?.labels).toMatchObject({ alertname: 'Alert0', pulumiscale_target: 'web', pulumiscale_truncated: expect.stringMatching(/labels dropped/) as unknown });
    expect(JSON.stringify(event).length).toBeLessThan(40_000);
  });

  it.each<{ rule: string; fingerprint?: string }>([
    { rule: 'a 10 kB fingerprint', fingerprint: 'f'.repeat(10_000) },
    { rule: 'no fingerprint (keyed by a hash of its labels)' },
  ])('firing with $rule, it is kept as one signal of bounded size', async ({ fingerprint }) => {
    const d = await start('16mb');
    const labels: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) labels[`label_${i}`] = 'v'.repeat(10_000);
    const { fingerprint: _fp, ...bare } = alert({ ...labels, pulumiscale_target: 'web' }, 0);
    const body = { version: '4', receiver: 'pulumiscale', status: 'firing', alerts: [fingerprint === undefined ? bare : { ...bare, fingerprint }] };
    expect((await post(d, body)).statusCode).toBe(202);
    expect((await post(d, body)).statusCode).toBe(202);
    const web = (await d.app.inject({ url: '/api/v1/targets/web' })).json<TargetState>();
    expect(web.signals).toHaveLength(1);
    expect(web.signals[0]?.id.length).toBeLessThanOrEqual(EVIDENCE_LIMITS.text);
    expect(JSON.stringify(web).length).toBeLessThan(40_000);
  });
});

/**
 * The daemon's drain, wired for real (store, engine, HTTP app) around a fake executor that can
 * hold an operation, and a fake clock for the drain timeout.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { startDaemon, type Daemon } from '../../src/daemon.js';
import { FakeClock } from '../support/fake-clock.js';
import { FakeExecutor } from '../support/fake-executor.js';

const config = parseConfig(
  `
server: { host: 127.0.0.1, port: 0 }
engine: { drainTimeout: 10m }
store: { path: ":memory:" }
targets:
  web: { workDir: /srv/web, stack: prod, configKey: web:replicas, min: 1, max: 9, cooldown: { up: 0s, down: 0s } }
`,
  { file: 'daemon-test.yaml', baseDir: '/', env: {} },
);

let daemon: Daemon | undefined;
afterEach(async () => {
  await daemon?.drain();
  daemon = undefined;
});

async function holdingDaemon(): Promise<{ d: Daemon; exec: FakeExecutor; clock: FakeClock }> {
  const exec = new FakeExecutor();
  exec.values.set('web', 2);
  const clock = new FakeClock();
  const d = await startDaemon(config, { executor: exec, clock, logger: pino({ level: 'silent' }) });
  daemon = d;
  await d.engine.idle();
  exec.holding = true;
  const res = await d.app.inject({ method: 'POST', url: '/api/v1/targets/web/scale', payload: { to: 5 } });
  expect(res.statusCode).toBe(202);
  await exec.until(() => exec.held.length === 1);
  return { d, exec, clock };
}

describe('drain', () => {
  it('turns not-ready and refuses work at once, lets the running operation finish, then closes', async () => {
    const { d, exec } = await holdingDaemon();
    const drained = d.drain();
    expect((await d.app.inject({ url: '/readyz' })).statusCode).toBe(503);
    const refused = await d.app.inject({ method: 'POST', url: '/api/v1/targets/web/scale', payload: { to: 3 } });
    expect(refused.json()).toMatchObject({ error: { code: 'PS_DRAINING' } });
    exec.releaseAll();
    expect(await drained).toEqual({ finished: true });
    expect(exec.values.get('web')).toBe(5);
    expect(exec.closed).toBe(true);
    expect(await d.drain()).toEqual({ finished: true }); // a second signal waits for the same drain
  });

  it('past drainTimeout cancels the running operation, keeps it in the store for the next start, and closes', async () => {
    const { d, exec, clock } = await holdingDaemon();
    const drained = d.drain();
    clock.advance(10 * 60_000);
    expect(await drained).toEqual({ finished: false });
    expect(exec.held).toEqual([]);
    expect(exec.values.get('web')).toBe(2);
    expect(exec.closed).toBe(true);
  });
});

describe('a daemon alone (SQLite)', () => {
  it('is a cluster of one: GET /api/v1/cluster lists itself and no leases, it owns every target, and counts one live replica', async () => {
    const exec = new FakeExecutor();
    exec.values.set('web', 2);
    const d = await startDaemon(config, { executor: exec, clock: new FakeClock(), logger: pino({ level: 'silent' }) });
    daemon = d;
    const cluster = (await d.app.inject({ url: '/api/v1/cluster' })).json<{ self: string; replicas: { id: string; draining: boolean }[]; leases: unknown[] }>();
    expect(cluster.self).toMatch(/.+-[0-9a-f]{6}$/);
    expect(cluster.replicas).toMatchObject([{ id: cluster.self, draining: false }]);
    expect(cluster.leases).toEqual([]);
    expect((await d.app.inject({ url: '/api/v1/targets/web' })).json()).toMatchObject({ owner: cluster.self });
    const metrics = (await d.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/^pulumiscale_replicas_live 1$/m);
    expect(metrics).toMatch(/^pulumiscale_leases_held 0$/m);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { TEST_AUTH, makeTestApp, type TestApp, type TestAppOptions } from '../support/http.js';
import { fixture } from '../support/sns.js';

const NOW = Date.parse('2026-11-27T10:01:00.000Z');
const bearer = { authorization: `Bearer ${TEST_AUTH.alertmanagerToken}` };
const firing = fixture('alertmanager/notification-firing.json');
const resolved = fixture('alertmanager/notification-resolved.json');

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function post(body: unknown, opts: { query?: string; headers?: Record<string, string>; app?: TestAppOptions } = {}) {
  t = await makeTestApp({ now: () => NOW, ...opts.app });
  return t.app.inject({ method: 'POST', url: `/webhooks/alertmanager${opts.query ?? ''}`, headers: opts.headers ?? bearer, payload: body as object });
}

function alert(labels: Record<string, string>, fingerprint: string, status = 'firing') {
  return { status, labels: { alertname: 'HighCPU', ...labels }, annotations: {}, startsAt: '2026-11-27T09:55:00Z', endsAt: '0001-01-01T00:00:00Z', fingerprint };
}

describe('POST /webhooks/alertmanager', () => {
  it('stores a notification for several targets as one signal change: a signal per firing alert, the resolved one ended (202)', async () => {
    const res = await post(firing);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 3, ignored: 1, rejected: [] });
    const engine = t!.engine;
    expect(engine.signalChanges).toHaveLength(1);
    expect(engine.upserted.map((s) => [s.target, s.id, s.direction, s.value])).toEqual([
      ['web', '6a1c0e7f2b9d4c13', 'up', 91.5],
      ['worker', 'd0b4e51a77c2f908', 'up', 1250],
      ['web', '93f0a2c4e18b6d57', 'down', 3.2],
    ]);
    expect(engine.upserted[0]).toMatchObject({ source: 'alertmanager', since: '2026-11-27T09:55:12.384Z', lastSeen: '2026-11-27T10:01:00.000Z' });
    expect(engine.ended).toMatchObject([{ target: 'web', id: '2e8b7f3a91c05d64' }]);
    expect(engine.signalChanges[0]?.events).toEqual([expect.objectContaining({ kind: 'ignored', target: 'web', reason: 'alert HighCPU resolved: its signal ended' })]);
    expect(engine.commands).toEqual([]);
    expect(engine.recorded).toEqual([]);
  });

  it.each<{ rule: string; config: Record<string, unknown>; expiresAt: string | null }>([
    { rule: 'signals expire after webhooks.alertmanager.signalTTL, 1h by default', config: {}, expiresAt: '2026-11-27T11:01:00.000Z' },
    { rule: 'a configured signalTTL', config: { webhooks: { alertmanager: { signalTTL: '10m' } } }, expiresAt: '2026-11-27T10:11:00.000Z' },
    { rule: 'signalTTL 0s: signals last until resolved', config: { webhooks: { alertmanager: { signalTTL: '0s' } } }, expiresAt: null },
  ])('$rule', async ({ config, expiresAt }) => {
    await post(firing, { app: { config } });
    expect(t!.engine.upserted.map((s) => s.expiresAt)).toEqual([expiresAt, expiresAt, expiresAt]);
  });

  it('2 firing alerts and 1 resolved: 2 signals and 1 ended, never an up for the resolution', async () => {
    const body = {
      ...firing,
      alerts: [alert({ pulumiscale_target: 'web' }, 'a'), alert({ pulumiscale_target: 'web', instance: 'b' }, 'b'), alert({ pulumiscale_target: 'web', instance: 'c' }, 'c', 'resolved')],
    };
    const res = await post(body);
    expect(res.json()).toEqual({ accepted: 2, ignored: 1, rejected: [] });
    expect(t!.engine.upserted.map((s) => [s.id, s.direction])).toEqual([
      ['a', 'up'],
      ['b', 'up'],
    ]);
    expect(t!.engine.ended).toMatchObject([{ target: 'web', id: 'c' }]);
    expect(t!.engine.commands).toEqual([]);
  });

  it('the same notification sent again refreshes the same signals (same keys and start), it starts no new ones', async () => {
    await post(firing);
    await t!.app.inject({ method: 'POST', url: '/webhooks/alertmanager', headers: bearer, payload: firing as object });
    const [first, again] = t!.engine.signalChanges.map((c) => c.upsert.map((s) => [s.target, s.id, s.since]));
    expect(again).toEqual(first);
    expect((await t!.engine.state('web'))?.signals.map((s) => s.id)).toEqual(['6a1c0e7f2b9d4c13', '93f0a2c4e18b6d57']);
  });

  it('a resolved-only notification ends its signal, records an ignored event and starts nothing', async () => {
    const res = await post(resolved);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 0, ignored: 1, rejected: [] });
    expect(t!.engine.signalChanges).toEqual([
      { upsert: [], end: [{ target: 'worker', id: 'd0b4e51a77c2f908', at: expect.any(String) as unknown }], events: [expect.objectContaining({ kind: 'ignored', target: 'worker' })] },
    ]);
    expect(t!.engine.commands).toEqual([]);
    expect(t!.store.events.map((e) => [e.kind, e.target])).toEqual([['ignored', 'worker']]);
  });

  it('accepts basic auth as an alternative to the bearer token', async () => {
    const { username, password } = TEST_AUTH.alertmanagerBasic;
    const res = await post(firing, { headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` } });
    expect(res.statusCode).toBe(202);
  });

  it('is open when no credentials are configured', async () => {
    const res = await post(firing, { headers: {}, app: { config: { webhooks: { alertmanager: { bearerTokens: [], basicAuth: [] } } } } });
    expect(res.statusCode).toBe(202);
  });

  it('?target= and ?action= override the labels for every alert', async () => {
    const res = await post(firing, { query: '?target=batch&action=up' });
    expect(res.statusCode).toBe(202);
    expect(t!.engine.upserted.map((s) => [s.target, s.direction])).toEqual([
      ['batch', 'up'],
      ['batch', 'up'],
      ['batch', 'up'],
    ]);
    expect(t!.engine.ended).toMatchObject([{ target: 'batch', id: '2e8b7f3a91c05d64' }]);
  });

  it('?dryRun=true queues a preview command per firing alert, and changes no signal', async () => {
    const res = await post(firing, { query: '?dryRun=true' });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 3, ignored: 1, rejected: [] });
    expect(t!.engine.commands.map((c) => [c.target, c.adjustment, c.dryRun, c.source])).toEqual([
      ['web', { type: 'step', direction: 'up' }, true, 'alertmanager'],
      ['worker', { type: 'step', direction: 'up' }, true, 'alertmanager'],
      ['web', { type: 'step', direction: 'down' }, true, 'alertmanager'],
    ]);
    expect(t!.engine.upserted).toEqual([]);
    expect(t!.engine.ended).toEqual([]);
    expect(t!.engine.events.map((e) => [e.kind, e.dryRun])).toEqual([['ignored', true]]);
    expect(t!.logs.filter((l) => l.msg === 'preview queued').map((l) => l.target)).toEqual(['web', 'worker', 'web']);
  });

  it('accepts the usable alerts and lists the others under rejected, each recorded', async () => {
    const body = { ...firing, alerts: [alert({ pulumiscale_target: 'web' }, 'good'), alert({ pulumiscale_target: 'nope' }, 'bad')] };
    const res = await post(body);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({
      accepted: 1,
      ignored: 0,
      rejected: [{ fingerprint: 'bad', code: 'PS_TARGET_UNKNOWN', message: expect.stringContaining('"nope"') as unknown }],
    });
    expect(t!.engine.upserted.map((s) => [s.target, s.id])).toEqual([['web', 'good']]);
    expect(t!.engine.events).toEqual([expect.objectContaining({ kind: 'ignored', target: '(unknown)', errorCode: 'PS_TARGET_UNKNOWN' })]);
    expect(t!.logs.some((l) => l.msg === 'alert refused' && l.code === 'PS_TARGET_UNKNOWN')).toBe(true);
  });

  describe('a notification of thousands of alerts (validated and translated a slice of 1,000 at a time)', () => {
    const big = (count: number, at: (i: number) => object | null = () => null) => ({
      ...firing,
      alerts: Array.from({ length: count }, (_, i) => at(i) ?? alert({ pulumiscale_target: 'web', instance: `w${i}` }, `fp-${i}`)),
    });
    const app = { config: { server: { bodyLimit: '4mb' } } };

    it('is stored whole, as one signal change, in the order of its alerts', async () => {
      const res = await post(big(2500), { app });
      expect(res.json()).toEqual({ accepted: 2500, ignored: 0, rejected: [] });
      expect(t!.engine.signalChanges).toHaveLength(1);
      expect(t!.engine.upserted.map((s) => s.id)).toEqual(Array.from({ length: 2500 }, (_, i) => `fp-${i}`));
    });

    it('an invalid alert in a later slice refuses the whole notification, naming its index', async () => {
      const res = await post(big(2500, (i) => (i === 1700 ? { status: 'firing', labels: {} } : null)), { app });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'PS_PAYLOAD_INVALID' } });
      expect(JSON.stringify(res.json())).toContain('1700');
      expect(t!.engine.signalChanges).toEqual([]);
    });

    it('a refused alert without fingerprint or name is named by its index in the notification', async () => {
      const nameless = { status: 'firing', labels: { pulumiscale_target: 'nope' }, annotations: {}, startsAt: '2026-11-27T09:55:00Z' };
      const res = await post(big(2500, (i) => (i === 1500 ? nameless : null)), { app });
      expect(res.json()).toMatchObject({ accepted: 2499, rejected: [{ fingerprint: '#1500', code: 'PS_TARGET_UNKNOWN' }] });
    });

    it('none usable in any slice: refused with the first problem, as a small one is', async () => {
      const res = await post(big(2500, (i) => alert({ pulumiscale_target: `nope-${i}` }, `fp-${i}`)), { app });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ error: { code: 'PS_TARGET_UNKNOWN', message: expect.stringContaining('nope-0') as unknown } });
    });
  });

  it('a store outage is 503 so that Alertmanager sends the notification again, and nothing is kept', async () => {
    t = await makeTestApp({ now: () => NOW });
    t.engine.failNext('signals');
    const inject = () => t!.app.inject({ method: 'POST', url: '/webhooks/alertmanager', headers: bearer, payload: firing as object });
    const down = await inject();
    expect(down.statusCode).toBe(503);
    expect(down.json<{ error: { code: string } }>().error.code).toBe('PS_STORE_UNAVAILABLE');
    expect(t.engine.untouched()).toBe(true);
    expect((await inject()).statusCode).toBe(202);
    expect(t.engine.upserted).toHaveLength(3);
  });

  it('takes a JSON body sent as text/plain too', async () => {
    t = await makeTestApp({ now: () => NOW });
    const res = await t.app.inject({
      method: 'POST',
      url: '/webhooks/alertmanager',
      headers: { ...bearer, 'content-type': 'text/plain' },
      payload: JSON.stringify(resolved),
    });
    expect(res.statusCode).toBe(202);
  });

  it('logs each active signal with structured fields', async () => {
    await post(firing);
    expect(t!.logs.filter((l) => l.msg === 'signal active').map((l) => [l.target, l.signal, l.direction])).toEqual([
      ['web', '6a1c0e7f2b9d4c13', 'up'],
      ['worker', 'd0b4e51a77c2f908', 'up'],
      ['web', '93f0a2c4e18b6d57', 'down'],
    ]);
    expect(t!.logs.find((l) => l.msg === 'alertmanager notification')).toMatchObject({ receiver: 'pulumiscale', alerts: 4, accepted: 3 });
  });
});

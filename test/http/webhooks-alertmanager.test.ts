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
  it('turns a notification for several targets into one intent per firing alert (202)', async () => {
    const res = await post(firing);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 3, ignored: 1, rejected: [] });
    const engine = t!.engine;
    expect(engine.submitted.map((i) => [i.target, i.adjustment])).toEqual([
      ['web', { type: 'step', direction: 'up' }],
      ['worker', { type: 'step', direction: 'up' }],
      ['web', { type: 'step', direction: 'down' }],
    ]);
    expect(engine.submitted[0]).toMatchObject({ source: 'alertmanager', bounds: 'clamp', dryRun: false, receivedAt: '2026-11-27T10:01:00.000Z' });
    expect(engine.recorded).toEqual([expect.objectContaining({ kind: 'ignored', target: 'web', reason: 'alert HighCPU resolved' })]);
  });

  it('records a resolved-only notification as an ignored event and starts nothing', async () => {
    const res = await post(resolved);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 0, ignored: 1, rejected: [] });
    expect(t!.engine.submitted).toEqual([]);
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
    expect(t!.engine.submitted.map((i) => [i.target, i.adjustment.type === 'step' && i.adjustment.direction])).toEqual([
      ['batch', 'up'],
      ['batch', 'up'],
      ['batch', 'up'],
    ]);
  });

  it('?dryRun=true previews every intent of the request', async () => {
    const res = await post(firing, { query: '?dryRun=true' });
    expect(res.statusCode).toBe(202);
    expect(t!.engine.submitted.map((i) => i.dryRun)).toEqual([true, true, true]);
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
    expect(t!.engine.submitted.map((i) => i.target)).toEqual(['web']);
    expect(t!.engine.recorded).toEqual([expect.objectContaining({ kind: 'ignored', target: '(unknown)', errorCode: 'PS_TARGET_UNKNOWN' })]);
    expect(t!.logs.some((l) => l.msg === 'alert refused' && l.code === 'PS_TARGET_UNKNOWN')).toBe(true);
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

  it('logs each accepted intent with structured fields', async () => {
    await post(firing);
    expect(t!.logs.filter((l) => l.msg === 'intent accepted').map((l) => l.target)).toEqual(['web', 'worker', 'web']);
    expect(t!.logs.find((l) => l.msg === 'alertmanager notification')).toMatchObject({ receiver: 'pulumiscale', alerts: 4, accepted: 3 });
  });
});

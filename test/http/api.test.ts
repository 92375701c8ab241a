import { afterEach, describe, expect, it } from 'vitest';
import { makeTestApp, TEST_AUTH, type TestApp } from '../support/http.js';

const AUTH = { authorization: `Bearer ${TEST_AUTH.apiToken}` };
const NOW = Date.parse('2026-11-27T10:00:00Z');

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

async function scale(name: string, body: unknown, headers: Record<string, string> = AUTH) {
  return t.app.inject({ method: 'POST', url: `/api/v1/targets/${name}/scale`, headers, payload: body as object });
}

async function pause(name: string, body: unknown, headers: Record<string, string> = AUTH) {
  return t.app.inject({ method: 'POST', url: `/api/v1/targets/${name}/pause`, headers, payload: body as object });
}

async function resume(name: string, headers: Record<string, string> = AUTH) {
  return t.app.inject({ method: 'POST', url: `/api/v1/targets/${name}/resume`, headers });
}

const codeOf = (res: { json: <T>() => T }) => res.json<{ error: { code: string } }>().error.code;

describe('POST /api/v1/targets/:name/scale', () => {
  it.each([
    ['to', { to: 5 }, { type: 'to', to: 5 }],
    ['by', { by: -1 }, { type: 'by', by: -1 }],
    ['action', { action: 'down' }, { type: 'step', direction: 'down' }],
  ])('queues a manual "%s" command and answers 202 with it', async (_n, body, adjustment) => {
    t = await makeTestApp({ now: () => NOW });
    const res = await scale('web', { ...body, dryRun: true, reason: 'load test' });
    expect(res.statusCode).toBe(202);
    const command = {
      id: 'id-1',
      target: 'web',
      adjustment,
      dryRun: true,
      source: 'api',
      reason: 'load test',
      receivedAt: '2026-11-27T10:00:00.000Z',
      bounds: 'reject',
      evidence: {},
    };
    expect(t.engine.commands).toEqual([command]);
    expect(res.json()).toEqual({ accepted: true, intent: command, pending: { intent: command, count: 1 } });
  });

  it('a command behind queued ones is queued too: pending names the next to run and counts every queued command', async () => {
    t = await makeTestApp({ now: () => NOW });
    await scale('web', { to: 5 });
    await scale('worker', { to: 3 });
    const res = await scale('web', { by: 2 });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ accepted: true, intent: { id: 'id-3', adjustment: { type: 'by', by: 2 } }, pending: { intent: { id: 'id-1' }, count: 2 } });
  });

  it('two identical commands are both queued, never merged at the door', async () => {
    t = await makeTestApp();
    await scale('web', { by: 2 });
    await scale('web', { by: 2 });
    expect(t.engine.commands.map((c) => [c.target, c.adjustment])).toEqual([
      ['web', { type: 'by', by: 2 }],
      ['web', { type: 'by', by: 2 }],
    ]);
  });

  it('a blank reason counts as none: the command says "manual", not ""', async () => {
    t = await makeTestApp();
    expect((await scale('web', { by: -1, reason: '  ' })).statusCode).toBe(202);
    expect(t.engine.commands[0]).toMatchObject({ reason: 'manual' });
  });

  it('without a reason, the command says "manual"; without dryRun, it applies', async () => {
    t = await makeTestApp();
    await scale('web', { action: 'up' });
    expect(t.engine.commands[0]).toMatchObject({ reason: 'manual', dryRun: false, adjustment: { type: 'step', direction: 'up' } });
  });

  it.each([
    ['below min', { to: 1 }],
    ['above max', { to: 41 }],
  ])('refuses a "to" %s with 422 and the bounds', async (_n, body) => {
    t = await makeTestApp();
    const res = await scale('web', body);
    expect(res.statusCode).toBe(422);
    expect(res.json()).toEqual({
      error: { code: 'PS_OUT_OF_BOUNDS', message: expect.stringContaining('[2, 40]') as unknown, details: { min: 2, max: 40, source: 'config' } },
    });
    expect(t.engine.untouched()).toBe(true);
  });

  it('refuses a "to" outside the bounds of a schedule window in effect, though inside the target\'s own', async () => {
    // At 12:00 UTC the daily window from 08:00 for 10h (min 10, max 20) is in effect.
    t = await makeTestApp({
      now: () => Date.parse('2026-03-28T12:00:00.000Z'),
      config: {
        targets: {
          web: {
            workDir: './infra/web',
            stack: 'prod',
            configKey: 'web:replicas',
            min: 2,
            max: 40,
            schedules: [{ name: 'day', cron: '0 8 * * *', duration: '10h', min: 10, max: 20 }],
          },
        },
      },
    });
    const res = await scale('web', { to: 30 });
    expect(res.statusCode).toBe(422);
    expect(res.json()).toMatchObject({ error: { code: 'PS_OUT_OF_BOUNDS', details: { min: 10, max: 20, source: 'schedule:day' } } });
    expect(t.engine.untouched()).toBe(true);
    expect((await scale('web', { to: 15 })).statusCode).toBe(202);
  });

  it('accepts the bounds themselves', async () => {
    t = await makeTestApp();
    expect((await scale('web', { to: 2 })).statusCode).toBe(202);
    expect((await scale('web', { to: 40 })).statusCode).toBe(202);
  });

  it.each([
    ['both to and by', { to: 3, by: 1 }],
    ['nothing', {}],
    ['a fractional to', { to: 2.5 }],
    ['a negative to', { to: -1 }],
    ['a zero by', { by: 0 }],
    ['a string to', { to: '5' }],
    ['an unknown field', { to: 5, force: true }],
    ['an unknown action', { action: 'sideways' }],
    ['a non-boolean dryRun', { to: 5, dryRun: 'yes' }],
  ])('refuses %s with 400 and zod issues', async (_n, body) => {
    t = await makeTestApp();
    const res = await scale('web', body);
    expect(res.statusCode).toBe(400);
    const err = res.json<{ error: { code: string; details: unknown[] } }>().error;
    expect(err.code).toBe('PS_PAYLOAD_INVALID');
    expect(err.details.length).toBeGreaterThan(0);
    expect(t.engine.untouched()).toBe(true);
  });

  it.each([undefined, 'application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=utf-8'])(
    'takes a JSON body labelled %s (curl -d sends a form label)',
    async (contentType) => {
      t = await makeTestApp();
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/targets/web/scale',
        headers: { ...AUTH, ...(contentType ? { 'content-type': contentType } : {}) },
        payload: '{"to": 5}',
      });
      expect(res.statusCode).toBe(202);
      expect(t.engine.commands.map((c) => c.adjustment)).toEqual([{ type: 'to', to: 5 }]);
    },
  );

  it('refuses a form-encoded body that is not JSON with 400', async () => {
    t = await makeTestApp();
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/targets/web/scale',
      headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'to=5',
    });
    expect(res.statusCode).toBe(400);
    expect(codeOf(res)).toBe('PS_PAYLOAD_INVALID');
    expect(t.engine.untouched()).toBe(true);
  });

  it('refuses malformed JSON with 400', async () => {
    t = await makeTestApp();
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/targets/web/scale',
      headers: { ...AUTH, 'content-type': 'application/json' },
      payload: '{"to": ',
    });
    expect(res.statusCode).toBe(400);
    expect(codeOf(res)).toBe('PS_PAYLOAD_INVALID');
  });

  // Ignored, `?dryRun=true` ran a real up: the routes that change something take no query string.
  it.each([
    ['scale', '/api/v1/targets/web/scale?dryRun=true', { by: -1 }],
    ['pause', '/api/v1/targets/web/pause?for=1h', { for: '2h' }],
    ['resume', '/api/v1/targets/web/resume?x=1', undefined],
    ['an approval', '/api/v1/approvals/a1/approve?force=true', undefined],
    ['the simulator', '/api/v1/targets/web/simulate?opSeconds=5', { start: { at: '2026-11-27T10:00:00Z', value: 2 }, until: '2026-11-27T11:00:00Z', inputs: [] }],
  ])('%s with a query string: 400 naming the key, nothing done', async (_what, url, body) => {
    t = await makeTestApp();
    const res = await t.app.inject({ method: 'POST', url, headers: AUTH, ...(body === undefined ? {} : { payload: body }) });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { code: string; message: string } }>().error).toMatchObject({ code: 'PS_PAYLOAD_INVALID', message: expect.stringMatching(/^this route takes no query string \(got "\w+"\)/) as string });
    expect(t.engine.untouched()).toBe(true);
  });

  it('answers 404 for an unknown target', async () => {
    t = await makeTestApp();
    const res = await scale('nope', { to: 3 });
    expect(res.statusCode).toBe(404);
    expect(codeOf(res)).toBe('PS_TARGET_UNKNOWN');
    expect(t.engine.untouched()).toBe(true);
  });

  it('answers 503 while draining and 503 when the store is down, queueing nothing', async () => {
    t = await makeTestApp();
    t.engine.draining = true;
    const draining = await scale('web', { to: 3 });
    expect(draining.statusCode).toBe(503);
    expect(codeOf(draining)).toBe('PS_DRAINING');
    // A drain is expected: its refusals are logged as refusals (info), not as errors with a stack.
    expect(t.logs.filter((l) => l.level >= 50)).toEqual([]);
    t.engine.draining = false;
    t.engine.failNext('command');
    const down = await scale('web', { to: 3 });
    expect(down.statusCode).toBe(503);
    expect(down.headers['retry-after']).toBe('5');
    expect(codeOf(down)).toBe('PS_STORE_UNAVAILABLE');
    expect(t.engine.commands).toEqual([]);
  });
});

describe('POST /api/v1/targets/:name/pause and /resume', () => {
  it.each<{ rule: string; body: Record<string, unknown>; want: { until: string; direction: string; reason: string } }>([
    {
      rule: '"for" pauses both directions until now + for, with a default reason',
      body: { for: '2h' },
      want: { until: '2026-11-27T12:00:00.000Z', direction: 'both', reason: 'paused through the API' },
    },
    {
      rule: 'a direction and a reason are kept',
      body: { for: '30m', direction: 'down', reason: 'load test' },
      want: { until: '2026-11-27T10:30:00.000Z', direction: 'down', reason: 'load test' },
    },
    { rule: 'a compound duration', body: { for: '1h30m', direction: 'up' }, want: { until: '2026-11-27T11:30:00.000Z', direction: 'up', reason: 'paused through the API' } },
    { rule: 'blanks around "for" are ignored', body: { for: ' 45s ' }, want: { until: '2026-11-27T10:00:45.000Z', direction: 'both', reason: 'paused through the API' } },
  ])('$rule: 200 with the target state', async ({ body, want }) => {
    t = await makeTestApp({ now: () => NOW });
    const res = await pause('web', body);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'web', paused: true, pause: want });
    expect(t.engine.pauses).toEqual([{ target: 'web', pause: want }]);
  });

  it('resume lifts the pause: 200 with the target state', async () => {
    t = await makeTestApp({ now: () => NOW });
    await pause('worker', { for: '2h' });
    const res = await resume('worker');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'worker', paused: false, pause: null });
    expect(t.engine.pauses.map((p) => [p.target, p.pause])).toEqual([
      ['worker', expect.objectContaining({ direction: 'both' })],
      ['worker', null],
    ]);
  });

  it('resume takes no body, and answers 200 on a target that was not paused', async () => {
    t = await makeTestApp();
    const res = await resume('batch');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'batch', pause: null });
  });

  it('the pause shows in the target state served afterwards', async () => {
    t = await makeTestApp({ now: () => NOW });
    await pause('web', { for: '2h', reason: 'deploy freeze' });
    const state = await t.app.inject({ url: '/api/v1/targets/web', headers: AUTH });
    expect(state.json()).toMatchObject({ paused: true, pause: { until: '2026-11-27T12:00:00.000Z', direction: 'both', reason: 'deploy freeze' } });
  });

  it.each<{ rule: string; body: unknown; path?: string }>([
    { rule: 'no body', body: undefined, path: 'for' },
    { rule: 'no "for"', body: { direction: 'up' }, path: 'for' },
    { rule: 'a "for" without a unit', body: { for: '2' }, path: 'for' },
    { rule: 'a "for" that is not a duration', body: { for: 'until lunch' }, path: 'for' },
    { rule: 'a zero duration', body: { for: '0s' }, path: 'for' },
    { rule: 'a negative duration', body: { for: '-2h' }, path: 'for' },
    { rule: 'a duration past any date', body: { for: '99999999999d' }, path: 'for' },
    { rule: 'a duration over 100 years (the bound of every duration)', body: { for: '40000d' }, path: 'for' },
    { rule: 'a number of seconds', body: { for: 7200 }, path: 'for' },
    { rule: 'an empty "for"', body: { for: '' }, path: 'for' },
    { rule: 'a "for" over 40 characters', body: { for: `${'1'.repeat(40)}s` }, path: 'for' },
    { rule: 'an unknown direction', body: { for: '2h', direction: 'sideways' }, path: 'direction' },
    { rule: 'a reason over 500 characters', body: { for: '2h', reason: 'x'.repeat(501) }, path: 'reason' },
    { rule: 'an unknown field', body: { for: '2h', until: '2026-11-28T00:00:00Z' } },
  ])('pause refuses $rule with 400 and its issues', async ({ body, path }) => {
    t = await makeTestApp({ now: () => NOW });
    const res = await pause('web', body);
    expect(res.statusCode).toBe(400);
    const err = res.json<{ error: { code: string; details: { path: string }[] } }>().error;
    expect(err.code).toBe('PS_PAYLOAD_INVALID');
    expect(err.details.length).toBeGreaterThan(0);
    if (path !== undefined) expect(err.details.map((d) => d.path)).toContain(path);
    expect(t.engine.untouched()).toBe(true);
  });

  it.each([
    ['pause', () => pause('nope', { for: '2h' })],
    ['resume', () => resume('nope')],
  ])('%s answers 404 for an unknown target', async (_n, call) => {
    t = await makeTestApp();
    const res = await call();
    expect(res.statusCode).toBe(404);
    expect(codeOf(res)).toBe('PS_TARGET_UNKNOWN');
    expect(t.engine.untouched()).toBe(true);
  });

  it.each([
    ['pause', () => pause('web', { for: '2h' })],
    ['resume', () => resume('web')],
  ])('%s answers 503 while draining, and 503 when the store is down', async (_n, call) => {
    t = await makeTestApp();
    t.engine.draining = true;
    const draining = await call();
    expect(draining.statusCode).toBe(503);
    expect(codeOf(draining)).toBe('PS_DRAINING');
    t.engine.draining = false;
    t.engine.failNext('pause');
    const down = await call();
    expect(down.statusCode).toBe(503);
    expect(codeOf(down)).toBe('PS_STORE_UNAVAILABLE');
    expect(t.engine.untouched()).toBe(true);
  });
});

describe('API authentication', () => {
  it.each([
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bearer wrong' }],
    ['a token of another route', { authorization: `Bearer ${TEST_AUTH.alertmanagerToken}` }],
    ['the wrong scheme', { authorization: `Token ${TEST_AUTH.apiToken}` }],
  ])('refuses %s with 401', async (_n, headers) => {
    t = await makeTestApp();
    for (const req of [
      { method: 'GET' as const, url: '/api/v1/targets' },
      { method: 'GET' as const, url: '/api/v1/events' },
      { method: 'POST' as const, url: '/api/v1/targets/web/scale', payload: { to: 3 } },
      { method: 'POST' as const, url: '/api/v1/targets/web/pause', payload: { for: '2h' } },
      { method: 'POST' as const, url: '/api/v1/targets/web/resume' },
    ]) {
      const res = await t.app.inject({ ...req, headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(codeOf(res)).toBe('PS_UNAUTHORIZED');
    }
    expect(t.engine.untouched()).toBe(true);
  });

  it('leaves the probes and metrics open', async () => {
    t = await makeTestApp();
    for (const url of ['/healthz', '/readyz', '/metrics']) {
      expect((await t.app.inject({ url })).statusCode).toBe(200);
    }
  });

  it('opens the API when no token is configured', async () => {
    t = await makeTestApp({ config: { api: { bearerTokens: [] } } });
    expect((await t.app.inject({ url: '/api/v1/targets' })).statusCode).toBe(200);
  });
});

describe('GET /api/v1/targets and /api/v1/events', () => {
  it('lists every target in config order, and one by name', async () => {
    t = await makeTestApp();
    const list = await t.app.inject({ url: '/api/v1/targets', headers: AUTH });
    expect(list.json<{ name: string }[]>().map((s) => s.name)).toEqual(['web', 'worker', 'batch']);
    const one = await t.app.inject({ url: '/api/v1/targets/worker', headers: AUTH });
    expect(one.json()).toMatchObject({ name: 'worker', stack: 'prod', configKeys: ['worker:replicas'], min: 1, max: 20 });
    const unknown = await t.app.inject({ url: '/api/v1/targets/nope', headers: AUTH });
    expect(unknown.statusCode).toBe(404);
    expect(codeOf(unknown)).toBe('PS_TARGET_UNKNOWN');
  });

  it('a bad query string is said to be the query string, not the body', async () => {
    t = await makeTestApp();
    for (const url of ['/api/v1/events?limit=0', '/api/v1/events?kind=changed', '/api/v1/approvals?status=nope', '/api/v1/targets/web/timeline?hours=0']) {
      const res = await t.app.inject({ method: 'GET', url, headers: AUTH });
      expect({ url, status: res.statusCode, error: res.json<{ error: { code: string; message: string } }>().error }).toMatchObject({
        url,
        status: 400,
        error: { code: 'PS_PAYLOAD_INVALID', message: 'the query string does not have the expected shape' },
      });
    }
  });

  it('serves history newest first, filtered and limited', async () => {
    t = await makeTestApp();
    for (let i = 1; i <= 5; i++) {
      t.store.events.push({
        id: `e${i}`,
        target: i % 2 ? 'web' : 'worker',
        at: new Date(NOW + i * 1000).toISOString(),
        kind: 'changed',
        from: i,
        to: i + 1,
        reason: 'test',
        source: 'api',
        intents: 1,
        durationMs: 10,
        dryRun: false,
      });
    }
    const ids = async (q: string) => (await t.app.inject({ url: `/api/v1/events${q}`, headers: AUTH })).json<{ id: string }[]>().map((e) => e.id);
    expect(await ids('')).toEqual(['e5', 'e4', 'e3', 'e2', 'e1']);
    expect(await ids('?target=web')).toEqual(['e5', 'e3', 'e1']);
    expect(await ids('?limit=2')).toEqual(['e5', 'e4']);
    expect(await ids('?limit=2&before=e4')).toEqual(['e3', 'e2']);
  });

  it("a target's state carries its queued commands, active signals, last evaluation, pause and error", async () => {
    t = await makeTestApp({ now: () => NOW });
    await scale('web', { to: 5 });
    const state = (await t.app.inject({ url: '/api/v1/targets/web', headers: AUTH })).json<Record<string, unknown>>();
    expect(state).toMatchObject({ pending: { id: 'id-1' }, pendingCount: 1, commands: [{ id: 'id-1', adjustment: { type: 'to', to: 5 } }], signals: [], desired: null, pause: null, error: null });
  });

  it.each(['?limit=0', '?limit=1001', '?limit=abc', '?color=red'])('refuses the query %s with 400', async (q) => {
    t = await makeTestApp();
    const res = await t.app.inject({ url: `/api/v1/events${q}`, headers: AUTH });
    expect(res.statusCode).toBe(400);
    expect(codeOf(res)).toBe('PS_PAYLOAD_INVALID');
  });
});

describe('probes and unknown routes', () => {
  it('turns not-ready while draining, staying alive', async () => {
    t = await makeTestApp();
    expect((await t.app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
    t.engine.draining = true;
    const ready = await t.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'draining' });
    expect((await t.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('answers unknown routes with a JSON 404', async () => {
    t = await makeTestApp();
    const res = await t.app.inject({ url: '/nope?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'PS_NOT_FOUND', message: 'no route GET /nope' } });
  });

  it('counts refusals by route and code in /metrics', async () => {
    t = await makeTestApp();
    await scale('web', { to: 99 });
    const text = (await t.app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/pulumiscale_http_refused_total\{route="\/api\/v1\/targets\/:name\/scale",code="PS_OUT_OF_BOUNDS"\} 1/);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { makeTestApp, TEST_AUTH, type TestApp } from '../support/http.js';
import { fixture } from '../support/sns.js';

let t: TestApp;
afterEach(async () => {
  await t.close();
});

const STEPS = {
  targets: {
    web: { min: 1, max: 40, cooldown: { up: '60s', down: '0s' }, steps: { up: { bands: [{ from: 70, to: 90, by: 2 }, { from: 90, by: 5 }] } } },
  },
};

/** The input. */
const EXAMPLE = fixture('simulate/issue-example.json');
/** What the example gives: the same at every entry point (policy, API, CLI). */
const EXPECTED = fixture<{ changes: { at: string; from: number; to: number }[]; final: number }>('simulate/issue-example.expected.json');

function post(body: unknown, name = 'web') {
  return t.app.inject({
    method: 'POST',
    url: `/api/v1/targets/${name}/simulate`,
    headers: { authorization: `Bearer ${TEST_AUTH.apiToken}`, 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });
}

describe('POST /api/v1/targets/:name/simulate', () => {
  it("answers the issue's example with the same JSON as the CLI, and touches nothing", async () => {
    t = await makeTestApp({ config: STEPS });
    const res = await post(EXAMPLE);
    expect(res.statusCode).toBe(200);
    const body = res.json<{ changes: { at: string; from: number; to: number; reason: string }[]; final: number }>();
    expect(body).toMatchObject(EXPECTED);
    expect(t.engine.untouched()).toBe(true);
  });

  it('takes opSeconds', async () => {
    t = await makeTestApp({ config: STEPS });
    const res = await post({ ...EXAMPLE, opSeconds: 20 });
    expect(res.json<{ changes: { at: string }[] }>().changes[0]?.at).toBe('2026-11-29T10:00:20.000Z');
  });

  it.each<[string, unknown, string]>([
    ['a bad direction', { ...EXAMPLE, inputs: [{ at: '2026-11-29T10:00:00Z', signal: { id: 'cpu', direction: 'sideways' } }] }, 'inputs.0.signal.direction'],
    ['no until', { start: EXAMPLE.start }, 'until'],
    ['a negative opSeconds', { ...EXAMPLE, opSeconds: -1 }, 'opSeconds'],
  ])('refuses %s with 400 naming the path', async (_name, body, path) => {
    t = await makeTestApp({ config: STEPS });
    const res = await post(body);
    expect(res.statusCode).toBe(400);
    const error = res.json<{ error: { code: string; details: { path: string }[] } }>().error;
    expect(error.code).toBe('PS_PAYLOAD_INVALID');
    expect(error.details.map((d) => d.path)).toContain(path);
  });

  it('an unknown target is 404', async () => {
    t = await makeTestApp({ config: STEPS });
    expect((await post(EXAMPLE, 'nope')).statusCode).toBe(404);
  });
});

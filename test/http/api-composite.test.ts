import { afterEach, describe, expect, it } from 'vitest';
import { makeTestApp, TEST_AUTH, type TestApp } from '../support/http.js';

let t: TestApp;
afterEach(async () => {
  await t.close();
});

const COMPOSITE = {
  targets: {
    web: { derived: [{ key: 'db:maxConnections', per: 20, plus: 10, min: 50, max: 1000 }, { key: 'web:cpuShares', per: 0.5, round: 'up' }] },
  },
};

async function scale(body: unknown) {
  return t.app.inject({ method: 'POST', url: '/api/v1/targets/web/scale', headers: { authorization: `Bearer ${TEST_AUTH.apiToken}`, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
}

describe('API: several keys of a composite target at once', () => {
  it('queues one command with the driving value and the derived values it names', async () => {
    t = await makeTestApp({ config: COMPOSITE });
    const res = await scale({ values: { 'web:replicas': 5, 'db:maxConnections': 110 } });
    expect(res.statusCode).toBe(202);
    expect(t.engine.commands.map((c) => c.adjustment)).toEqual([{ type: 'to', to: 5, values: { 'db:maxConnections': 110 } }]);
  });

  it.each<[string, Record<string, number>, number, string]>([
    ['without the driving key', { 'db:maxConnections': 110 }, 400, 'PS_PAYLOAD_INVALID'],
    ['with a key the target does not own', { 'web:replicas': 5, 'cache:size': 3 }, 400, 'PS_PAYLOAD_INVALID'],
    ["with a derived value outside its rule's bounds", { 'web:replicas': 5, 'db:maxConnections': 5000 }, 422, 'PS_OUT_OF_BOUNDS'],
    ["with a driving value outside the target's bounds", { 'web:replicas': 99, 'db:maxConnections': 110 }, 422, 'PS_OUT_OF_BOUNDS'],
  ])('refuses a command %s, queueing nothing', async (_name, values, status, code) => {
    t = await makeTestApp({ config: COMPOSITE });
    const res = await scale({ values });
    expect(res.statusCode).toBe(status);
    expect(res.json<{ error: { code: string } }>().error.code).toBe(code);
    expect(t.engine.commands).toEqual([]);
  });

  it('refuses values together with to', async () => {
    t = await makeTestApp({ config: COMPOSITE });
    expect((await scale({ to: 5, values: { 'web:replicas': 5 } })).statusCode).toBe(400);
  });
});

/**
 * The API's credentials over a real socket, with raw request lines no client library would
 * normalise: percent-encoded, doubled-slash and mixed-case spellings of every protected route.
 * `app.inject()` cannot find this class of hole: it lives between the raw URL and the router,
 * which decodes the path before it matches.
 */
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestApp, TEST_AUTH, type TestApp } from '../support/http.js';

let t: TestApp;
let port: number;

beforeAll(async () => {
  t = await makeTestApp();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  port = (t.app.server.address() as AddressInfo).port;
});
afterAll(async () => {
  await t.close();
});

/** Sends one raw HTTP/1.1 request and resolves with the status code of the answer. */
async function rawRequest(method: string, rawPath: string, headers: Record<string, string> = {}, body?: string): Promise<number> {
  return (await rawAnswer(method, rawPath, headers, body)).status;
}

/** Sends one raw HTTP/1.1 request and resolves with the answer's status code and body. */
function rawAnswer(method: string, rawPath: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (status === null) reject(new Error(`no HTTP answer to ${method} ${rawPath}: ${JSON.stringify(answer.slice(0, 200))}`));
      else resolve({ status: Number(status[1]), body: answer.slice(answer.indexOf('\r\n\r\n') + 4) });
    });
    const lines = [`${method} ${rawPath} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
    socket.end(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
  });
}

/** Every protected route, as a method and a canonical path. */
const PROTECTED: { method: string; path: string; body?: string }[] = [
  { method: 'GET', path: '/api/v1/targets' },
  { method: 'GET', path: '/api/v1/targets/web' },
  { method: 'POST', path: '/api/v1/targets/web/scale', body: '{"to": 7}' },
  { method: 'POST', path: '/api/v1/targets/web/pause', body: '{"for": "2h"}' },
  { method: 'POST', path: '/api/v1/targets/web/resume' },
  { method: 'GET', path: '/api/v1/targets/web/timeline' },
  { method: 'GET', path: '/api/v1/events' },
  { method: 'POST', path: '/api/v1/targets/web/simulate', body: '{"start": {"at": "2026-11-29T10:00:00Z", "value": 2}, "until": "2026-11-29T10:10:00Z"}' },
  { method: 'GET', path: '/api/v1/approvals' },
  { method: 'GET', path: '/api/v1/approvals/a1' },
  { method: 'POST', path: '/api/v1/approvals/a1/approve' },
  { method: 'POST', path: '/api/v1/approvals/a1/reject' },
  { method: 'GET', path: '/api/v1/cluster' },
];

/** Ways to spell the same path that a router may decode or fold into the canonical one. */
function spellings(path: string): string[] {
  const encodeAll = (s: string) => [...s].map((c) => (c === '/' ? c : `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)).join('');
  return [
    path,
    path.replace('/api/', '/%61pi/'),
    path.replace('/api/', '/%61%70%69/'),
    path.replace('/api/', '/%41pi/'),
    path.replace('/v1/', '/%76%31/'),
    encodeAll(path),
    path.replace('/api/', '//api/'),
    path.replace('/api/', '/api//'),
    `/${path}`,
    path.replace('/api/', '/API/'),
    path.replace('/api/', '/Api/'),
    path.replace('/v1/', '/V1/'),
    path.replace('/api/', '/./api/'),
    path.replace('/api/v1/', '/api/x/../v1/'),
    path.replace('/api/', '/%2e/api/'),
    `${path}/`,
    `${path}?`,
    `${path}%3F`,
    `${path};`,
  ];
}

const CASES = PROTECTED.flatMap((route) => spellings(route.path).map((raw) => ({ ...route, raw })));

/** How much has reached the engine so far: commands, pauses, signal changes, events, verdicts. */
const reached = () => t.engine.commands.length + t.engine.pauses.length + t.engine.signalChanges.length + t.engine.events.length + t.engine.verdicts.length;

describe('the API over a real socket', () => {
  it.each(CASES)('$method $raw without credentials never reaches a handler', async ({ method, raw, body }) => {
    const before = reached();
    const status = await rawRequest(method, raw, {}, body);
    // 401 where the router matched a protected route, 404 or 400 where it matched nothing.
    expect([400, 401, 404]).toContain(status);
    expect(reached()).toBe(before);
  });

  it.each(CASES)('$method $raw with a wrong token never reaches a handler', async ({ method, raw, body }) => {
    const before = reached();
    const status = await rawRequest(method, raw, { Authorization: 'Bearer not-the-token' }, body);
    expect([400, 401, 404]).toContain(status);
    expect(reached()).toBe(before);
  });

  it('the encoded spelling that used to slip through is refused, and the canonical one works with the token', async () => {
    expect(await rawRequest('POST', '/%61pi/v1/targets/web/scale', {}, '{"to": 7}')).toBe(401);
    expect(await rawRequest('GET', '/%61pi/v1/targets')).toBe(401);
    const auth = { Authorization: `Bearer ${TEST_AUTH.apiToken}` };
    expect(await rawRequest('GET', '/api/v1/targets', auth)).toBe(200);
    expect(await rawRequest('POST', '/%61pi/v1/targets/web/scale', auth, '{"to": 7}')).toBe(202);
    expect(await rawRequest('POST', '/%61pi/v1/targets/web/pause', {}, '{"for": "2h"}')).toBe(401);
    expect(await rawRequest('POST', '/%61pi/v1/targets/web/pause', auth, '{"for": "2h"}')).toBe(200);
    expect(await rawRequest('POST', '/%61pi/v1/targets/web/resume', auth)).toBe(200);
    expect(t.engine.commands.map((c) => c.adjustment)).toEqual([{ type: 'to', to: 7 }]);
    expect(t.engine.pauses.map((p) => [p.target, p.pause?.direction ?? null])).toEqual([
      ['web', 'both'],
      ['web', null],
    ]);
  });

  it("a URL the router cannot read is refused in the one error shape, and counted", async () => {
    const auth = { authorization: `Bearer ${TEST_AUTH.apiToken}` };
    for (const rawPath of ['/api/v1/targets/%ZZ', `/api/v1/targets/${'x'.repeat(150)}`, `/api/v1/targets/${'x'.repeat(150)}/scale`]) {
      const answer = await rawAnswer('POST', rawPath, auth, '{"to": 3}');
      expect({ rawPath, status: answer.status, code: (JSON.parse(answer.body) as { error?: { code?: string } }).error?.code }).toEqual({ rawPath, status: 400, code: 'PS_URL_INVALID' });
    }
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/pulumiscale_http_refused_total\{route="unmatched",code="PS_URL_INVALID"\} 3/);
  });

  it('every /api route the app serves is in the list this suite probes', () => {
    // printRoutes draws a tree whose nodes hold the rest of the path after their parent's.
    const served: string[] = [];
    const stack: { depth: number; path: string }[] = [];
    for (const line of t.app.printRoutes({ commonPrefix: false }).split('\n')) {
      const m = /^([\s│]*)[└├]── (\S+)(?: \(([A-Z, ]+)\))?/.exec(line);
      if (m === null) continue;
      const depth = (m[1] ?? '').length;
      while (stack.length > 0 && (stack[stack.length - 1] as { depth: number }).depth >= depth) stack.pop();
      const full = `${stack[stack.length - 1]?.path ?? ''}${m[2] ?? ''}`;
      stack.push({ depth, path: full });
      if (full.startsWith('/api') && m[3] !== undefined) {
        for (const verb of m[3].split(', ')) if (verb !== 'HEAD') served.push(`${verb} ${full}`);
      }
    }
    const probed = PROTECTED.map((r) => `${r.method} ${r.path.replace('/web', '/:name').replace('/a1', '/:id')}`);
    expect(served.length).toBeGreaterThan(10);
    for (const route of served) expect(probed).toContain(route);
  });
});

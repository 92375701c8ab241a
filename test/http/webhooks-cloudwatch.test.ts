import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TEST_AUTH, makeTestApp, type TestApp, type TestAppOptions } from '../support/http.js';
import { TEST_CERT_URL, fixture, makeTestPki, signSns, startCertServer, type CertServer, type TestPki } from '../support/sns.js';

const NOW = Date.parse('2026-11-27T10:01:00.000Z');
const TEXT = { 'content-type': 'text/plain; charset=UTF-8' };

let pki: TestPki;
let server: CertServer;
let t: TestApp | undefined;

beforeAll(async () => {
  pki = makeTestPki();
  server = await startCertServer(pki);
});
afterAll(() => server.close());
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function app(opts: TestAppOptions = {}) {
  t = await makeTestApp({ now: () => NOW, sns: { fetchCert: server.fetchCert, confirmSubscription: vi.fn(server.confirm) }, ...opts });
  return t;
}

async function post(body: unknown, query = '', headers: Record<string, string> = TEXT) {
  t ??= await app();
  return t.app.inject({ method: 'POST', url: `/webhooks/cloudwatch${query}`, headers, payload: typeof body === 'string' ? body : JSON.stringify(body) });
}

const signed = (file: string, version: '1' | '2' = '1') => signSns(fixture(`cloudwatch/${file}.json`), pki.key, { version });
const WEB_ALARM = 'arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-cpu-high';
const WORKER_ALARM = 'arn:aws:cloudwatch:us-east-1:123456789012:alarm:worker-backlog-per-task';

describe('POST /webhooks/cloudwatch: notifications', () => {
  it.each(['1', '2'] as const)('a signed (v%s) ALARM notification sent as text/plain starts a signal keyed by the alarm ARN (202)', async (version) => {
    const res = await post(signed('sns-notification-single-alarm', version));
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 1, ignored: 0, rejected: [] });
    expect(t!.engine.signalChanges).toEqual([{ upsert: [expect.anything()], end: [], events: [] }]);
    const [signal] = t!.engine.upserted;
    expect(signal).toMatchObject({
      id: WEB_ALARM,
      target: 'web',
      source: 'cloudwatch',
      direction: 'up',
      value: 87.5,
      threshold: 80,
      since: '2026-11-27T10:00:31.518Z',
      lastSeen: '2026-11-27T10:01:00.000Z',
      expiresAt: null,
      reason: 'alarm web-cpu-high',
    });
    expect(signal?.evidence).toEqual({
      alarmName: 'web-cpu-high',
      messageId: '0f3c5b7e-8a21-5d94-b6e0-7c1a2f9d4e83',
      threshold: 80,
      comparisonOperator: 'GreaterThanThreshold',
      metricValue: 87.5,
    });
    expect(t!.engine.commands).toEqual([]);
    expect(t!.store.deliveries.get('sns:0f3c5b7e-8a21-5d94-b6e0-7c1a2f9d4e83')).toBe('2026-11-28T10:01:00.000Z');
  });

  it('a metric-math alarm signals the target its description names, in the default direction', async () => {
    const res = await post(signed('sns-notification-math-alarm', '2'));
    expect(res.statusCode).toBe(202);
    expect(t!.engine.upserted.map((s) => [s.target, s.id, s.direction, s.value, s.threshold])).toEqual([['worker', WORKER_ALARM, 'up', 152.25, 100]]);
  });

  it('with webhooks.cloudwatch.signalTTL, the signal expires that long after it was sent', async () => {
    await app({ config: { webhooks: { cloudwatch: { signalTTL: '30m' } } } });
    await post(signed('sns-notification-single-alarm'));
    expect(t!.engine.upserted.map((s) => s.expiresAt)).toEqual(['2026-11-27T10:31:00.000Z']);
  });

  it.each([
    ['sns-notification-single-ok', 'web', WEB_ALARM],
    ['sns-notification-math-ok', 'worker', WORKER_ALARM],
  ])('%s (OK) ends the signal of its alarm and records an ignored event', async (file, target, id) => {
    const res = await post(signed(file));
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 0, ignored: 1, rejected: [] });
    expect(t!.engine.signalChanges).toEqual([
      {
        upsert: [],
        end: [{ target, id, at: expect.any(String) as unknown }],
        events: [expect.objectContaining({ kind: 'ignored', target, source: 'cloudwatch', reason: expect.stringMatching(/went to OK: its signal ended$/) as unknown })],
      },
    ]);
    expect(t!.engine.commands).toEqual([]);
  });

  it('ALARM then OK: the OK ends the very signal the ALARM started', async () => {
    await post(signed('sns-notification-single-alarm'));
    await post(signed('sns-notification-single-ok'));
    const [started] = t!.engine.upserted;
    expect(t!.engine.ended).toMatchObject([{ target: started?.target, id: started?.id }]);
    expect((await t!.engine.state('web'))?.signals).toEqual([]);
  });

  it('?action=down overrides the description token', async () => {
    await post(signed('sns-notification-single-alarm'), '?action=down');
    expect(t!.engine.upserted.map((s) => s.direction)).toEqual(['down']);
  });

  it("the description token overrides the target's default action", async () => {
    await app({ config: { targets: { web: { defaultAction: 'down' } } } });
    await post(signed('sns-notification-single-alarm'));
    expect(t!.engine.upserted.map((s) => s.direction)).toEqual(['up']);
  });

  it('?target= overrides the description token and ?dryRun=true queues a preview command instead of a signal', async () => {
    const res = await post(signed('sns-notification-single-alarm'), '?target=batch&dryRun=true');
    expect(res.json()).toEqual({ accepted: 1, ignored: 0, rejected: [] });
    expect(t!.engine.commands.map((c) => [c.target, c.adjustment, c.dryRun, c.source, c.bounds])).toEqual([
      ['batch', { type: 'step', direction: 'up' }, true, 'cloudwatch', 'clamp'],
    ]);
    expect(t!.engine.upserted).toEqual([]);
  });

  it('?dryRun=true on an OK ends no signal', async () => {
    const res = await post(signed('sns-notification-single-ok'), '?dryRun=true');
    expect(res.json()).toEqual({ accepted: 0, ignored: 1, rejected: [] });
    expect(t!.engine.ended).toEqual([]);
    expect(t!.engine.events.map((e) => [e.dryRun, e.reason])).toEqual([[true, 'alarm web-cpu-high went to OK (dry run): no signal ended']]);
  });

  it('takes application/json as well', async () => {
    const res = await post(signed('sns-notification-single-alarm'), '', { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(202);
  });

  it('fetches the signing certificate once for many deliveries', async () => {
    const before = server.requests.filter((p) => p === new URL(TEST_CERT_URL).pathname).length;
    await post(signed('sns-notification-single-alarm'));
    await post(signed('sns-notification-single-ok'));
    await post(signed('sns-notification-math-alarm'));
    expect(server.requests.filter((p) => p === new URL(TEST_CERT_URL).pathname).length - before).toBe(1);
  });

  it.each<{ rule: string; file: string; query: string; method: 'signals' | 'command' }>([
    { rule: 'storing the signal fails', file: 'sns-notification-single-alarm', query: '', method: 'signals' },
    { rule: 'ending the signal fails', file: 'sns-notification-single-ok', query: '', method: 'signals' },
    { rule: 'queueing the preview fails', file: 'sns-notification-single-alarm', query: '?dryRun=true', method: 'command' },
  ])("$rule: 503, and the MessageId is forgotten so that SNS's retry gets through", async ({ file, query, method }) => {
    await app();
    t!.engine.failNext(method);
    const body = signed(file);
    const down = await post(body, query);
    expect(down.statusCode).toBe(503);
    expect(down.json<{ error: { code: string } }>().error.code).toBe('PS_STORE_UNAVAILABLE');
    expect(t!.store.deliveries.size).toBe(0);
    expect((await post(body, query)).statusCode).toBe(202);
    expect((await post(body, query)).statusCode).toBe(409);
    expect(t!.engine.upserted.length + t!.engine.ended.length + t!.engine.commands.length).toBe(1);
  });
});

describe('POST /webhooks/cloudwatch: subscriptions', () => {
  it('without autoConfirm, logs the SubscribeURL at warn and answers 200', async () => {
    const msg = signed('sns-subscription-confirmation');
    const res = await post(msg);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ type: 'SubscriptionConfirmation', confirmed: false });
    expect(t!.deps.sns?.confirmSubscription).not.toHaveBeenCalled();
    const line = t!.logs.find((l) => l.level === 40 && typeof l.subscribeURL === 'string');
    expect(line?.subscribeURL).toBe(msg.SubscribeURL);
    expect(t!.engine.untouched()).toBe(true);
  });

  it('with autoConfirm, GETs the SubscribeURL (through the local HTTPS server)', async () => {
    await app({ config: { webhooks: { cloudwatch: { autoConfirm: true } } } });
    const msg = signed('sns-subscription-confirmation', '2');
    const res = await post(msg);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ type: 'SubscriptionConfirmation', confirmed: true });
    expect(t!.deps.sns?.confirmSubscription).toHaveBeenCalledWith(msg.SubscribeURL);
    expect(server.requests).toContain(`${new URL(msg.SubscribeURL as string).pathname}${new URL(msg.SubscribeURL as string).search}`);
  });

  it('a failed confirmation answers 502 so that SNS sends it again', async () => {
    await app({
      config: { webhooks: { cloudwatch: { autoConfirm: true } } },
      sns: { fetchCert: server.fetchCert, confirmSubscription: () => Promise.reject(new Error('ECONNRESET')) },
    });
    const res = await post(signed('sns-subscription-confirmation'));
    expect(res.statusCode).toBe(502);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('PS_SNS_CONFIRM_FAILED');
  });

  it('an UnsubscribeConfirmation is logged and answered 200', async () => {
    const res = await post(signed('sns-unsubscribe-confirmation'));
    expect(res.statusCode).toBe(200);
    expect(t!.logs.some((l) => l.level === 40 && l.type === 'UnsubscribeConfirmation')).toBe(true);
    expect(t!.engine.untouched()).toBe(true);
  });
});

describe('POST /webhooks/cloudwatch with verifySignature off', () => {
  const off = { config: { webhooks: { cloudwatch: { verifySignature: false, topicArns: [] } } } };

  it('accepts raw message delivery (the bare alarm)', async () => {
    await app(off);
    const res = await post(fixture('cloudwatch/alarm-single-metric.json'));
    expect(res.statusCode).toBe(202);
    expect(t!.engine.upserted.map((s) => [s.target, s.id])).toEqual([['web', WEB_ALARM]]);
  });

  it('accepts an unsigned envelope from any topic, and still deduplicates it', async () => {
    await app(off);
    const body = { ...fixture('cloudwatch/sns-notification-single-alarm.json'), TopicArn: 'arn:aws:sns:eu-west-1:1:other' };
    expect((await post(body)).statusCode).toBe(202);
    expect((await post(body)).statusCode).toBe(409);
    expect(t!.engine.signalChanges).toHaveLength(1);
  });

  it('still checks the topic when topicArns are listed', async () => {
    await app({ config: { webhooks: { cloudwatch: { verifySignature: false, topicArns: [TEST_AUTH.topicArn] } } } });
    const body = { ...fixture('cloudwatch/sns-notification-single-alarm.json'), TopicArn: 'arn:aws:sns:eu-west-1:1:other' };
    expect((await post(body)).statusCode).toBe(403);
  });
});

describe('POST /webhooks/cloudwatch with webhooks.cloudwatch.basicAuth (https://user:pass@host/webhooks/cloudwatch)', () => {
  const SNS_USER = { username: 'sns', password: 'sns-password-for-tests' };
  const withBasic = { config: { webhooks: { cloudwatch: { basicAuth: [SNS_USER] } } } };
  const basic = (user: string, password: string) => ({ ...TEXT, authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

  it.each([
    { rule: "no credentials (SNS's first try) are refused with a Basic challenge, so that SNS sends them", headers: TEXT },
    { rule: 'a wrong password is refused', headers: basic(SNS_USER.username, 'wrong') },
    { rule: 'a wrong user name is refused', headers: basic('someone', SNS_USER.password) },
    { rule: 'a bearer token is refused (the route takes basic credentials only)', headers: { ...TEXT, authorization: 'Bearer sns-password-for-tests' } },
  ])('$rule: 401 PS_UNAUTHORIZED before the signature is checked', async ({ headers }) => {
    await app(withBasic);
    const fetchedBefore = server.fetched.length;
    const res = await post(signed('sns-notification-single-alarm'), '', headers);
    expect(res.statusCode).toBe(401);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('PS_UNAUTHORIZED');
    expect(res.headers['www-authenticate']).toBe('Basic realm="pulumiscale"');
    expect(server.fetched.length).toBe(fetchedBefore);
    expect(t!.engine.untouched()).toBe(true);
  });

  it('the right credentials proceed: a valid notification is accepted (202)', async () => {
    await app(withBasic);
    const res = await post(signed('sns-notification-single-alarm'), '', basic(SNS_USER.username, SNS_USER.password));
    expect(res.statusCode).toBe(202);
    expect(t!.engine.upserted.map((s) => s.target)).toEqual(['web']);
  });

  it('credentials are checked before the body is read: a body that is not JSON is still 401', async () => {
    await app(withBasic);
    const res = await post('{not json', '', TEXT);
    expect(res.statusCode).toBe(401);
  });

  it('a bad signature after good credentials is 401 PS_WEBHOOK_SIGNATURE without a challenge (no credentials would help)', async () => {
    await app(withBasic);
    const res = await post({ ...signed('sns-notification-single-alarm'), Message: '{}' }, '', basic(SNS_USER.username, SNS_USER.password));
    expect(res.statusCode).toBe(401);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('PS_WEBHOOK_SIGNATURE');
    expect(res.headers['www-authenticate']).toBeUndefined();
  });
});

describe('POST /webhooks/cloudwatch: a message signed by AWS itself', () => {
  // From aws/aws-sdk-java-v2; see test/fixtures/cloudwatch/README.md.
  const certUrl = 'https://sns.us-west-2.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem';
  const pem = readFileSync(new URL('../fixtures/cloudwatch/aws-genuine-SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem', import.meta.url), 'utf8');

  it('a genuine SubscriptionConfirmation passes the route with the certificate at its SigningCertURL', async () => {
    const genuine = fixture<Record<string, string>>('cloudwatch/aws-genuine-subscription-confirmation-v1.json');
    const fetchCert = vi.fn(async (url: string) => (url === certUrl ? pem : Promise.reject(new Error(`unexpected ${url}`))));
    await app({ config: { webhooks: { cloudwatch: { topicArns: [genuine.TopicArn] } } }, sns: { fetchCert, confirmSubscription: vi.fn() } });
    const res = await post(genuine);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ type: 'SubscriptionConfirmation', confirmed: false });
    expect(fetchCert).toHaveBeenCalledWith(certUrl);
  });
});

describe('refusals are counted by route and code', () => {
  it('increments pulumiscale_http_refused_total', async () => {
    await post('{not json');
    const text = await t!.metrics.registry.metrics();
    expect(text).toContain('pulumiscale_http_refused_total{route="/webhooks/cloudwatch",code="PS_PAYLOAD_INVALID"} 1');
  });
});

/**
 * Every kind of bad delivery, through `app.inject()`: each is refused with its registry code
 * and status, and nothing reaches the engine.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import { TEST_AUTH, makeTestApp, type TestApp } from '../support/http.js';
import { fixture, makeTestPki, signSns, startCertServer, type CertServer, type TestPki } from '../support/sns.js';

const NOW = Date.parse('2026-11-27T10:01:00.000Z');
const BEARER = { authorization: `Bearer ${TEST_AUTH.alertmanagerToken}` };
const TEXT = { 'content-type': 'text/plain; charset=UTF-8' };

let pki: TestPki;
let server: CertServer;
let t: TestApp | undefined;

beforeAll(async () => {
  pki = makeTestPki();
  server = await startCertServer(pki, {}, 500);
});
afterAll(() => server.close());
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const am = (payload: unknown, opts: { query?: string; headers?: Record<string, string> } = {}): InjectOptions => ({
  method: 'POST',
  url: `/webhooks/alertmanager${opts.query ?? ''}`,
  headers: { 'content-type': 'application/json', ...(opts.headers ?? BEARER) },
  payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
});
const cw = (payload: unknown, query = '', headers: Record<string, string> = TEXT): InjectOptions => ({
  method: 'POST',
  url: `/webhooks/cloudwatch${query}`,
  headers,
  payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
});

const firing = () => fixture('alertmanager/notification-firing.json');
const amWith = (labels: Record<string, string>) => ({
  ...firing(),
  alerts: [{ status: 'firing', labels: { alertname: 'HighCPU', ...labels }, annotations: {}, startsAt: '2026-11-27T09:55:00Z', fingerprint: 'f1' }],
});
type Envelope = Record<string, string> & { Message: string; MessageId: string };
const note = (patch: Record<string, string> = {}): Envelope => ({ ...fixture<Envelope>('cloudwatch/sns-notification-single-alarm.json'), ...patch });
const alarmNote = (alarmPatch: Record<string, unknown>) =>
  note({ Message: JSON.stringify({ ...fixture('cloudwatch/alarm-single-metric.json'), ...alarmPatch }) });
const sign = (msg: Record<string, unknown>, opts: Parameters<typeof signSns>[2] = {}) => signSns(msg, pki.key, opts);

interface BadCase {
  name: string;
  request: () => InjectOptions;
  status: number;
  code: ErrorCode;
  config?: Record<string, unknown>;
  prepare?: (t: TestApp) => void;
  /** After the refusal: what else must hold (no fetch, delivery forgotten…). */
  check?: (t: TestApp) => void;
}

const alertmanagerCases: BadCase[] = [
  { name: 'malformed JSON', request: () => am('{"version": "4", "alerts": ['), status: 400, code: 'PS_PAYLOAD_INVALID' },
  { name: 'malformed JSON sent as text/plain', request: () => am('{"version"', { headers: { ...BEARER, ...TEXT } }), status: 400, code: 'PS_PAYLOAD_INVALID' },
  { name: 'a wrong version', request: () => am({ ...firing(), version: '3' }), status: 400, code: 'PS_PAYLOAD_INVALID' },
  { name: 'a missing version', request: () => am({ ...firing(), version: undefined }), status: 400, code: 'PS_PAYLOAD_INVALID' },
  { name: 'a body over server.bodyLimit', request: () => am({ ...firing(), padding: 'x'.repeat(70 * 1024) }), status: 413, code: 'PS_PAYLOAD_TOO_LARGE' },
  { name: 'a body that is not JSON, whatever its label', request: () => am('<alerts/>', { headers: { ...BEARER, 'content-type': 'application/xml' } }), status: 400, code: 'PS_PAYLOAD_INVALID' },
  { name: 'no token', request: () => am(firing(), { headers: {} }), status: 401, code: 'PS_UNAUTHORIZED' },
  { name: 'a wrong token', request: () => am(firing(), { headers: { authorization: 'Bearer nope' } }), status: 401, code: 'PS_UNAUTHORIZED' },
  {
    name: 'a wrong basic password',
    request: () => am(firing(), { headers: { authorization: `Basic ${Buffer.from('alertmanager:nope').toString('base64')}` } }),
    status: 401,
    code: 'PS_UNAUTHORIZED',
  },
  { name: 'an unknown target label', request: () => am(amWith({ pulumiscale_target: 'nope' })), status: 404, code: 'PS_TARGET_UNKNOWN' },
  { name: 'an unknown ?target=', request: () => am(firing(), { query: '?target=nope' }), status: 404, code: 'PS_TARGET_UNKNOWN' },
  { name: 'no target named', request: () => am(amWith({})), status: 422, code: 'PS_TARGET_MISSING' },
  { name: 'an unknown action label', request: () => am(amWith({ pulumiscale_target: 'web', pulumiscale_action: 'sideways' })), status: 400, code: 'PS_ACTION_INVALID' },
  { name: 'an unknown ?action=', request: () => am(firing(), { query: '?action=sideways' }), status: 400, code: 'PS_ACTION_INVALID' },
  { name: 'a ?dryRun= that is not a boolean', request: () => am(firing(), { query: '?dryRun=maybe' }), status: 400, code: 'PS_PAYLOAD_INVALID' },
  // Ignored, it made a real signal of what was meant as a dry run.
  { name: 'a misspelt ?dryrun=true', request: () => am(firing(), { query: '?dryrun=true' }), status: 400, code: 'PS_PAYLOAD_INVALID' },
  { name: 'draining', prepare: (t) => void (t.engine.draining = true), request: () => am(firing()), status: 503, code: 'PS_DRAINING' },
  { name: 'the store unavailable (a firing alert)', prepare: (t) => t.engine.failNext('signals'), request: () => am(amWith({ pulumiscale_target: 'web' })), status: 503, code: 'PS_STORE_UNAVAILABLE' },
  { name: 'the store unavailable (a resolution)', prepare: (t) => t.engine.failNext('signals'), request: () => am(fixture('alertmanager/notification-resolved.json')), status: 503, code: 'PS_STORE_UNAVAILABLE' },
];

const cloudwatchCases: BadCase[] = [
  { name: 'malformed JSON', request: () => cw('{"Type": "Notification",'), status: 400, code: 'PS_PAYLOAD_INVALID' },
  { name: 'an empty body', request: () => cw(''), status: 400, code: 'PS_PAYLOAD_INVALID' },
  { name: 'an unknown message Type', request: () => cw(sign(note({ Type: 'Telegram' }))), status: 400, code: 'PS_PAYLOAD_INVALID' },
  { name: 'a body over server.bodyLimit', request: () => cw(sign(note({ Message: 'x'.repeat(70 * 1024) }))), status: 413, code: 'PS_PAYLOAD_TOO_LARGE' },
  { name: 'a tampered Message', request: () => cw({ ...sign(note()), Message: note().Message.replace('web-cpu-high', 'web-cpu-low') }), status: 401, code: 'PS_WEBHOOK_SIGNATURE' },
  { name: 'a tampered Subject (v2)', request: () => cw({ ...sign(note(), { version: '2' }), Subject: 'OK' }), status: 401, code: 'PS_WEBHOOK_SIGNATURE' },
  { name: 'a signature by another key', request: () => cw(signSns(note(), pki.otherKey)), status: 401, code: 'PS_WEBHOOK_SIGNATURE' },
  { name: 'an unknown SignatureVersion', request: () => cw({ ...sign(note()), SignatureVersion: '3' }), status: 401, code: 'PS_WEBHOOK_SIGNATURE' },
  { name: 'an unsigned envelope', request: () => cw(note()), status: 401, code: 'PS_WEBHOOK_SIGNATURE' },
  { name: 'raw message delivery (the bare alarm)', request: () => cw(fixture('cloudwatch/alarm-single-metric.json')), status: 401, code: 'PS_WEBHOOK_SIGNATURE' },
  {
    name: 'a certificate URL off the SNS hosts (nothing fetched)',
    request: () => cw(sign(note(), { certUrl: `https://127.0.0.1:${server.port}/SimpleNotificationService-1.pem` })),
    status: 400,
    code: 'PS_CERT_URL_REJECTED',
    check: () => expect(server.fetched).toEqual([]),
  },
  {
    name: 'a certificate that cannot be fetched',
    request: () => cw(sign(note(), { certUrl: 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-gone.pem' })),
    status: 502,
    code: 'PS_CERT_FETCH_FAILED',
  },
  { name: 'an unknown topic', request: () => cw(sign(note({ TopicArn: 'arn:aws:sns:us-east-1:999999999999:elsewhere' }))), status: 403, code: 'PS_TOPIC_UNKNOWN' },
  { name: 'no topic listed at all', config: { webhooks: { cloudwatch: { topicArns: [] } } }, request: () => cw(sign(note())), status: 403, code: 'PS_TOPIC_UNKNOWN' },
  { name: 'an unknown ?target=', request: () => cw(sign(note()), '?target=nope'), status: 404, code: 'PS_TARGET_UNKNOWN' },
  { name: 'an alarm naming an unknown target', request: () => cw(sign(alarmNote({ AlarmDescription: 'pulumiscale:target=nope' }))), status: 404, code: 'PS_TARGET_UNKNOWN' },
  { name: 'an alarm naming no target', request: () => cw(sign(alarmNote({ AlarmDescription: null }))), status: 422, code: 'PS_TARGET_MISSING' },
  { name: 'an unknown ?action=', request: () => cw(sign(note()), '?action=sideways'), status: 400, code: 'PS_ACTION_INVALID' },
  { name: 'an unknown action token', request: () => cw(sign(alarmNote({ AlarmDescription: 'pulumiscale:target=web pulumiscale:action=sideways' }))), status: 400, code: 'PS_ACTION_INVALID' },
  { name: 'a query key it does not know (?dry_run=true)', request: () => cw(sign(note()), '?dry_run=true'), status: 400, code: 'PS_PAYLOAD_INVALID' },
  // Confirmed, it would have dropped every alarm the subscription then carried (each a 400).
  {
    name: 'a subscription to a URL whose query its notifications would fail (never confirmed)',
    config: { webhooks: { cloudwatch: { autoConfirm: true } } },
    request: () => cw(sign(fixture('cloudwatch/sns-subscription-confirmation.json')), '?target=web&env=prod'),
    status: 400,
    code: 'PS_PAYLOAD_INVALID',
  },
  { name: 'a Message that is not an alarm', request: () => cw(sign(note({ Message: 'hello' }))), status: 400, code: 'PS_PAYLOAD_INVALID' },
  {
    name: 'a replayed MessageId',
    prepare: (t) => void t.store.deliveries.set(`sns:${note().MessageId}`, '2026-11-28T00:00:00.000Z'),
    request: () => cw(sign(note())),
    status: 409,
    code: 'PS_REPLAYED',
  },
  { name: 'a message older than the replay window', request: () => cw(sign(note({ Timestamp: '2026-11-25T10:00:00.000Z' }))), status: 409, code: 'PS_REPLAYED' },
  {
    name: 'a SubscribeURL off the SNS hosts (never called)',
    config: { webhooks: { cloudwatch: { autoConfirm: true } } },
    request: () => cw(sign({ ...fixture('cloudwatch/sns-subscription-confirmation.json'), SubscribeURL: 'https://attacker.example/confirm' })),
    status: 400,
    code: 'PS_CERT_URL_REJECTED',
  },
  { name: 'draining', prepare: (t) => void (t.engine.draining = true), request: () => cw(sign(note())), status: 503, code: 'PS_DRAINING' },
  { name: 'the store unavailable (delivery id)', prepare: (t) => t.store.failNext('rememberDelivery'), request: () => cw(sign(note())), status: 503, code: 'PS_STORE_UNAVAILABLE' },
  {
    name: 'the store unavailable (signal), the delivery id forgotten',
    prepare: (t) => t.engine.failNext('signals'),
    request: () => cw(sign(note())),
    status: 503,
    code: 'PS_STORE_UNAVAILABLE',
    check: (t) => expect(t.store.deliveries.size).toBe(0),
  },
  {
    name: 'the store unavailable (an OK ending its signal), the delivery id forgotten',
    prepare: (t) => t.engine.failNext('signals'),
    request: () => cw(sign(fixture('cloudwatch/sns-notification-single-ok.json'))),
    status: 503,
    code: 'PS_STORE_UNAVAILABLE',
    check: (t) => expect(t.store.deliveries.size).toBe(0),
  },
];

describe.each([
  ['POST /webhooks/alertmanager', alertmanagerCases],
  ['POST /webhooks/cloudwatch', cloudwatchCases],
])('%s refuses', (_route, cases) => {
  it.each(cases)('$name: $status $code, nothing reaches the engine', async (c) => {
    server.fetched.length = 0;
    const confirm = vi.fn(async () => {
      throw new Error('a refused request must not confirm anything');
    });
    t = await makeTestApp({ now: () => NOW, ...(c.config ? { config: c.config } : {}), sns: { fetchCert: server.fetchCert, confirmSubscription: confirm } });
    c.prepare?.(t);
    const res = await t.app.inject(c.request());
    expect({ status: res.statusCode, code: res.json<{ error?: { code?: string } }>().error?.code }).toEqual({ status: c.status, code: c.code });
    expect(t.engine.untouched()).toBe(true);
    expect(confirm).not.toHaveBeenCalled();
    c.check?.(t);
  });
});

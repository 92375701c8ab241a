import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PulumiScaleError } from '../../src/errors.js';
import { checkSnsUrl, createCertCache, parseSnsMessage, snsStringToSign, verifySnsSignature } from '../../src/sources/sns.js';
import { httpsGetText } from '../../src/http/sns-client.js';
import { TEST_CERT_URL, fixture, makeTestPki, signSns, startCertServer, type CertServer, type TestPki } from '../support/sns.js';
import { codeOfAsync } from '../support/errors.js';

let pki: TestPki;
let server: CertServer;

beforeAll(async () => {
  pki = makeTestPki();
  server = await startCertServer(pki, {
    '/SimpleNotificationService-big.pem': 'x'.repeat(200 * 1024),
    '/SimpleNotificationService-hang.pem': () => {}, // never answers
    '/SimpleNotificationService-garbage.pem': 'not a certificate',
  }, 300);
});
afterAll(() => server.close());


const TYPES = {
  Notification: 'cloudwatch/sns-notification-single-alarm.json',
  SubscriptionConfirmation: 'cloudwatch/sns-subscription-confirmation.json',
  UnsubscribeConfirmation: 'cloudwatch/sns-unsubscribe-confirmation.json',
} as const;

describe('checkSnsUrl: only https on an SNS host, before anything is fetched', () => {
  it.each([
    ['SigningCertURL', TEST_CERT_URL],
    ['SigningCertURL', 'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem'],
    ['SigningCertURL', 'https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-0123.pem'],
    ['SigningCertURL', 'https://SNS.EU-WEST-1.AMAZONAWS.COM:443/SimpleNotificationService-0123.pem'],
    ['SubscribeURL', 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:1:t&Token=abc'],
  ] as const)('accepts %s %s', (kind, url) => {
    expect(checkSnsUrl(url, kind)).toBeInstanceOf(URL);
  });

  it.each([
    ['SigningCertURL', 'http://sns.us-east-1.amazonaws.com/cert.pem', 'plain http'],
    ['SigningCertURL', 'https://evil.example/cert.pem', 'another host'],
    ['SigningCertURL', 'https://sns.us-east-1.amazonaws.com.evil.example/cert.pem', 'an SNS name as a subdomain'],
    ['SigningCertURL', 'https://evilsns.us-east-1.amazonaws.com/cert.pem', 'a look-alike host'],
    ['SigningCertURL', 'https://s3.us-east-1.amazonaws.com/cert.pem', 'another AWS service'],
    ['SigningCertURL', 'https://sns.us-east-1.amazonaws.com:8443/cert.pem', 'another port'],
    ['SigningCertURL', 'https://user:pw@sns.us-east-1.amazonaws.com/cert.pem', 'credentials in the URL'],
    ['SigningCertURL', 'https://sns.us-east-1.amazonaws.com/cert.txt', 'a path that is not .pem'],
    ['SigningCertURL', 'https://sns.us-east-1.amazonaws.com/cert.pem?x=1', 'a query on the certificate'],
    ['SigningCertURL', 'https://127.0.0.1/cert.pem', 'an address'],
    ['SigningCertURL', 'not a url', 'not a URL'],
    ['SigningCertURL', undefined, 'no URL'],
    ['SubscribeURL', 'https://attacker.example/?Action=ConfirmSubscription', 'a SubscribeURL off the SNS hosts'],
  ] as const)('refuses %s with %s (%s)', (kind, url, _why) => {
    try {
      checkSnsUrl(url, kind);
      expect.unreachable();
    } catch (err) {
      expect((err as PulumiScaleError).code).toBe('PS_CERT_URL_REJECTED');
    }
  });
});

const certAt = (host: string) => `https://${host}/SimpleNotificationService-0123456789abcdef.pem`;

describe('checkSnsUrl: the host is sns.<region>.amazonaws.com, <region> shaped like an AWS region', () => {
  it.each([
    ['sns.us-east-1.amazonaws.com', 'a commercial region'],
    ['sns.eu-central-2.amazonaws.com', 'a region numbered past 1'],
    ['sns.ap-southeast-4.amazonaws.com', 'a compound direction'],
    ['sns.il-central-1.amazonaws.com', 'a newer area code'],
    ['sns.mx-central-1.amazonaws.com', 'another newer area code'],
    ['sns.us-gov-west-1.amazonaws.com', 'GovCloud'],
    ['sns.us-iso-east-1.amazonaws.com', 'an ISO partition region'],
    ['sns.us-isob-east-1.amazonaws.com', 'an ISO-B partition region'],
    ['sns.cn-north-1.amazonaws.com.cn', 'China on .amazonaws.com.cn'],
    ['sns.cn-northwest-1.amazonaws.com.cn', 'the other China region'],
    ['SNS.US-WEST-2.AMAZONAWS.COM', 'upper case (URL lower-cases the host)'],
  ])('accepts %s (%s)', (host) => {
    expect(checkSnsUrl(certAt(host), 'SigningCertURL').hostname).toBe(host.toLowerCase());
    expect(checkSnsUrl(`https://${host}/?Action=ConfirmSubscription&Token=t`, 'SubscribeURL')).toBeInstanceOf(URL);
  });

  it.each([
    ['sns.s3-ap-southeast-2.amazonaws.com', 'an S3 bucket named sns (legacy dash-region host)'],
    ['sns.s3.amazonaws.com', 'an S3 bucket named sns (global host)'],
    ['sns.s3-external-1.amazonaws.com', 'an S3 bucket named sns (s3-external-1)'],
    ['sns.s3-accelerate.amazonaws.com', 'an S3 bucket named sns (transfer acceleration)'],
    ['sns.s3.us-east-1.amazonaws.com', 'an S3 bucket named sns (dotted region host)'],
    ['sns.us-east.amazonaws.com', 'a region without its number'],
    ['sns.us-east-123.amazonaws.com', 'a region number of three digits'],
    ['sns.us-east-1-evil.amazonaws.com', 'a region with a tail'],
    ['sns.us-east-1.evil.amazonaws.com', 'a region followed by another label'],
    ['sns.amazonaws.com', 'no region at all'],
    ['sns.cn-north-1.amazonaws.com', 'a China region off .amazonaws.com.cn'],
    ['sns.us-east-1.amazonaws.com.cn', 'a region outside China on .amazonaws.com.cn'],
  ])('refuses %s (%s) for certificates and SubscribeURLs alike', (host) => {
    for (const [kind, url] of [['SigningCertURL', certAt(host)], ['SubscribeURL', `https://${host}/?Action=ConfirmSubscription`]] as const) {
      expect(() => checkSnsUrl(url, kind)).toThrow(expect.objectContaining({ code: 'PS_CERT_URL_REJECTED' }));
    }
  });
});

describe('checkSnsUrl: a SigningCertURL is /SimpleNotificationService-<id>.pem and nothing more', () => {
  const host = 'https://sns.us-east-1.amazonaws.com';
  it.each([
    ['/cert.pem', 'another file name'],
    ['/SimpleNotificationService-.pem', 'an empty id'],
    ['/SimpleNotificationService-ab_cd.pem', 'an id that is not letters and digits'],
    ['/certs/SimpleNotificationService-0123.pem', 'a folder before the name'],
    ['/SimpleNotificationService-0123.pem/x.pem', 'a path after the name'],
    ['/SimpleNotificationService-0123.PEM', 'another extension case'],
    ['/SimpleNotificationService-0123.pem?', 'an empty query'],
    ['/SimpleNotificationService-0123.pem#', 'an empty fragment'],
    ['/SimpleNotificationService-0123.pem#x', 'a fragment'],
    ['/SimpleNotificationService-0123%2e.pem', 'a percent-encoded character'],
  ])('refuses %s (%s)', (path) => {
    expect(() => checkSnsUrl(`${host}${path}`, 'SigningCertURL')).toThrow(expect.objectContaining({ code: 'PS_CERT_URL_REJECTED' }));
  });

  it('leaves a SubscribeURL free to take any path and query on the SNS host', () => {
    expect(checkSnsUrl(`${host}/some/path?Action=ConfirmSubscription&Token=t`, 'SubscribeURL').pathname).toBe('/some/path');
  });
});

describe('snsStringToSign: AWS field order per message type', () => {
  const common = { MessageId: 'id-1', TopicArn: 'arn:t', Message: 'line one\nline two', Timestamp: '2026-11-27T10:00:00.000Z' };
  it.each([
    {
      rule: 'Notification with a Subject',
      msg: { Type: 'Notification', Subject: 'ALARM: "x"', ...common },
      want: 'Message\nline one\nline two\nMessageId\nid-1\nSubject\nALARM: "x"\nTimestamp\n2026-11-27T10:00:00.000Z\nTopicArn\narn:t\nType\nNotification\n',
    },
    {
      rule: 'Notification without a Subject leaves the Subject lines out',
      msg: { Type: 'Notification', ...common },
      want: 'Message\nline one\nline two\nMessageId\nid-1\nTimestamp\n2026-11-27T10:00:00.000Z\nTopicArn\narn:t\nType\nNotification\n',
    },
    {
      rule: 'Notification with a null Subject (Lambda style) leaves it out too',
      msg: { Type: 'Notification', Subject: null, ...common },
      want: 'Message\nline one\nline two\nMessageId\nid-1\nTimestamp\n2026-11-27T10:00:00.000Z\nTopicArn\narn:t\nType\nNotification\n',
    },
    {
      rule: 'SubscriptionConfirmation signs SubscribeURL and Token, never Subject or UnsubscribeURL',
      msg: { Type: 'SubscriptionConfirmation', Token: 'tok', SubscribeURL: 'https://sns/x', Subject: 'ignored', ...common },
      want: 'Message\nline one\nline two\nMessageId\nid-1\nSubscribeURL\nhttps://sns/x\nTimestamp\n2026-11-27T10:00:00.000Z\nToken\ntok\nTopicArn\narn:t\nType\nSubscriptionConfirmation\n',
    },
    {
      rule: 'UnsubscribeConfirmation like SubscriptionConfirmation',
      msg: { Type: 'UnsubscribeConfirmation', Token: 'tok', SubscribeURL: 'https://sns/x', ...common },
      want: 'Message\nline one\nline two\nMessageId\nid-1\nSubscribeURL\nhttps://sns/x\nTimestamp\n2026-11-27T10:00:00.000Z\nToken\ntok\nTopicArn\narn:t\nType\nUnsubscribeConfirmation\n',
    },
  ])('$rule', ({ msg, want }) => {
    expect(snsStringToSign(parseSnsMessage(msg))).toBe(want);
  });
});

describe('verifySnsSignature', () => {
  const cases = (['1', '2'] as const).flatMap((version) =>
    Object.entries(TYPES).map(([type, file]) => ({ version, type, file })),
  );

  it.each(cases)('SignatureVersion $version verifies a $type through the local HTTPS server', async ({ version, file }) => {
    const msg = parseSnsMessage(signSns(fixture(file), pki.key, { version }));
    await expect(verifySnsSignature(msg, server.fetchCert)).resolves.toBeUndefined();
  });

  const tampered: Record<keyof typeof TYPES, string[]> = {
    Notification: ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn'],
    SubscriptionConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn'],
    UnsubscribeConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn'],
  };
  const tamperCases = cases.flatMap((c) => tampered[c.type as keyof typeof TYPES].map((field) => ({ ...c, field })));

  it.each(tamperCases)('v$version $type with a tampered $field fails with PS_WEBHOOK_SIGNATURE', async ({ version, file, field }) => {
    const signed = signSns(fixture(file), pki.key, { version });
    const forged = { ...signed, [field]: field === 'SubscribeURL' ? 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=other' : `${String(signed[field])}x` };
    expect(await codeOfAsync(verifySnsSignature(parseSnsMessage(forged), server.fetchCert))).toBe('PS_WEBHOOK_SIGNATURE');
  });

  it('a Notification without a Subject verifies (the field is left out of the string)', async () => {
    const { Subject: _omit, ...bare } = fixture(TYPES.Notification);
    await expect(verifySnsSignature(parseSnsMessage(signSns(bare, pki.key)), server.fetchCert)).resolves.toBeUndefined();
  });

  it.each([
    { rule: 'signed with a key SNS never used', make: () => signSns(fixture(TYPES.Notification), pki.otherKey), code: 'PS_WEBHOOK_SIGNATURE' },
    { rule: 'a SHA1 signature presented as version 2', make: () => ({ ...signSns(fixture(TYPES.Notification), pki.key, { version: '1' }), SignatureVersion: '2' }), code: 'PS_WEBHOOK_SIGNATURE' },
    { rule: 'a signature that is not base64 of anything', make: () => ({ ...signSns(fixture(TYPES.Notification), pki.key), Signature: '!!!' }), code: 'PS_WEBHOOK_SIGNATURE' },
  ])('refuses $rule', async ({ make, code }) => {
    expect(await codeOfAsync(verifySnsSignature(parseSnsMessage(make()), server.fetchCert))).toBe(code);
  });

  it.each([
    { rule: 'an unknown SignatureVersion', msg: () => ({ ...signSns(fixture(TYPES.Notification), pki.key), SignatureVersion: '3' }), code: 'PS_WEBHOOK_SIGNATURE' },
    { rule: 'an unsigned message', msg: () => fixture(TYPES.Notification), code: 'PS_WEBHOOK_SIGNATURE' },
    { rule: 'a certificate URL off the SNS hosts', msg: () => signSns(fixture(TYPES.Notification), pki.key, { certUrl: 'https://attacker.example/SimpleNotificationService-1.pem' }), code: 'PS_CERT_URL_REJECTED' },
    { rule: 'a certificate URL over http', msg: () => signSns(fixture(TYPES.Notification), pki.key, { certUrl: TEST_CERT_URL.replace('https:', 'http:') }), code: 'PS_CERT_URL_REJECTED' },
  ])('refuses $rule without fetching anything', async ({ msg, code }) => {
    const fetchCert = vi.fn(server.fetchCert);
    expect(await codeOfAsync(verifySnsSignature(parseSnsMessage(msg()), fetchCert))).toBe(code);
    expect(fetchCert).not.toHaveBeenCalled();
  });

  it.each([
    { rule: 'a 404', path: '/SimpleNotificationService-missing.pem' },
    { rule: 'a body past the size cap', path: '/SimpleNotificationService-big.pem' },
    { rule: 'a server that never answers (timeout)', path: '/SimpleNotificationService-hang.pem' },
    { rule: 'a body that is not a certificate', path: '/SimpleNotificationService-garbage.pem' },
  ])('a certificate fetch failing with $rule is PS_CERT_FETCH_FAILED (5xx: SNS retries)', async ({ path }) => {
    const msg = parseSnsMessage(signSns(fixture(TYPES.Notification), pki.key, { certUrl: `https://sns.us-east-1.amazonaws.com${path}` }));
    expect(await codeOfAsync(verifySnsSignature(msg, server.fetchCert))).toBe('PS_CERT_FETCH_FAILED');
  });
});

describe('createCertCache', () => {
  it('fetches each certificate once, also for concurrent requests', async () => {
    const fetch = vi.fn(server.fetchCert);
    const cached = createCertCache(fetch);
    const msg = parseSnsMessage(signSns(fixture(TYPES.Notification), pki.key));
    await Promise.all([verifySnsSignature(msg, cached), verifySnsSignature(msg, cached)]);
    await verifySnsSignature(msg, cached);
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(cached.size()).toBe(1);
  });

  it('does not keep a failed fetch, so the next delivery tries again', async () => {
    const fetch = vi.fn<(url: string) => Promise<string>>().mockRejectedValueOnce(new Error('ECONNRESET')).mockResolvedValue(pki.cert);
    const cached = createCertCache(fetch);
    await expect(cached(TEST_CERT_URL)).rejects.toThrow('ECONNRESET');
    await expect(cached(TEST_CERT_URL)).resolves.toBe(pki.cert);
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('does not keep a body that is not a certificate', async () => {
    const fetch = vi.fn<(url: string) => Promise<string>>().mockResolvedValueOnce('<html>error</html>').mockResolvedValue(pki.cert);
    const cached = createCertCache(fetch);
    await expect(cached(TEST_CERT_URL)).rejects.toThrow();
    await expect(cached(TEST_CERT_URL)).resolves.toBe(pki.cert);
  });

  it('stays within its bound', async () => {
    const cached = createCertCache(async () => pki.cert, { max: 2 });
    for (const n of [1, 2, 3]) await cached(`https://sns.us-east-1.amazonaws.com/${n}.pem`);
    expect(cached.size()).toBe(2);
  });
});

describe('httpsGetText', () => {
  it('refuses a server whose certificate is not trusted', async () => {
    await expect(httpsGetText(`https://127.0.0.1:${server.port}/SimpleNotificationService-big.pem`, { timeoutMs: 1_000 })).rejects.toThrow();
  });
});

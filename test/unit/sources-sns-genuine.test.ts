/**
 * Messages signed by Amazon SNS itself, checked with AWS's own certificate: the rest of the SNS
 * tests sign with test/support/sns.ts, whose string-to-sign could share a mistake with ours.
 * The five messages and the certificate come from aws/aws-sdk-java-v2,
 * services-custom/sns-message-manager/src/test/resources/software/amazon/awssdk/messagemanager/sns/internal/
 * (test-*.json and SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem); see
 * test/fixtures/cloudwatch/README.md. The certificate expires on 2026-10-14, which does not
 * matter: the verifier does not check validity dates, and nothing here fetches it.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { parseSnsMessage, verifySnsSignature } from '../../src/sources/sns.js';
import { fixture } from '../support/sns.js';
import { codeOfAsync } from '../support/errors.js';

const CERT_URL = 'https://sns.us-west-2.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem';
const PEM = readFileSync(
  new URL('../fixtures/cloudwatch/aws-genuine-SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem', import.meta.url),
  'utf8',
);

/** Serves the genuine certificate at its SigningCertURL, and nothing else. */
const serveGenuine = () =>
  vi.fn(async (url: string) => {
    if (url !== CERT_URL) throw new Error(`unexpected certificate URL ${url}`);
    return PEM;
  });

type Genuine = Record<string, string>;

const GENUINE = [
  { file: 'aws-genuine-notification-subject-v1.json', type: 'Notification', version: '1', note: 'with a Subject' },
  { file: 'aws-genuine-notification-no-subject-v1.json', type: 'Notification', version: '1', note: 'without a Subject' },
  { file: 'aws-genuine-notification-v2.json', type: 'Notification', version: '2', note: 'without a Subject' },
  { file: 'aws-genuine-subscription-confirmation-v1.json', type: 'SubscriptionConfirmation', version: '1', note: 'with its SubscribeURL and Token' },
  { file: 'aws-genuine-unsubscribe-confirmation-v2.json', type: 'UnsubscribeConfirmation', version: '2', note: 'with its SubscribeURL and Token' },
] as const;

const load = (file: string) => fixture<Genuine>(`cloudwatch/${file}`);

/** Flips the lowest bit of the first character: one byte off, still valid UTF-8 and JSON. */
const flipFirstByte = (s: string) => String.fromCharCode(s.charCodeAt(0) ^ 1) + s.slice(1);


describe('genuine SNS messages verify with the certificate AWS published for them', () => {
  it('the certificate is AWS\'s SNS signing certificate', () => {
    const cert = new X509Certificate(PEM);
    expect(cert.subject).toBe('CN=sns.amazonaws.com');
    expect(cert.issuer).toContain('CN=Amazon RSA 2048 M01');
  });

  it.each(GENUINE)('a $type (SignatureVersion $version, $note) verifies', async ({ file, type, version }) => {
    const raw = load(file);
    expect([raw.Type, raw.SignatureVersion, raw.SigningCertURL]).toEqual([type, version, CERT_URL]);
    const fetchCert = serveGenuine();
    await expect(verifySnsSignature(parseSnsMessage(raw), fetchCert)).resolves.toBeUndefined();
    expect(fetchCert).toHaveBeenCalledWith(CERT_URL);
  });

  it.each(GENUINE)('a $type (SignatureVersion $version) with one byte of its Message flipped fails with PS_WEBHOOK_SIGNATURE', async ({ file }) => {
    const raw = load(file);
    const forged = { ...raw, Message: flipFirstByte(raw.Message ?? '') };
    expect(forged.Message).not.toBe(raw.Message);
    expect(await codeOfAsync(verifySnsSignature(parseSnsMessage(forged), serveGenuine()))).toBe('PS_WEBHOOK_SIGNATURE');
  });

  it('the Subject is signed when present: removing it fails', async () => {
    const { Subject: _dropped, ...raw } = load('aws-genuine-notification-subject-v1.json');
    expect(await codeOfAsync(verifySnsSignature(parseSnsMessage(raw), serveGenuine()))).toBe('PS_WEBHOOK_SIGNATURE');
  });

  it('a null Subject (how Lambda shows an absent one) is left out of the string, as SNS leaves it out', async () => {
    const raw = { ...load('aws-genuine-notification-no-subject-v1.json'), Subject: null };
    await expect(verifySnsSignature(parseSnsMessage(raw), serveGenuine())).resolves.toBeUndefined();
  });

  it('a genuine signature does not carry over to a SubscribeURL of another token', async () => {
    const raw = load('aws-genuine-subscription-confirmation-v1.json');
    const forged = { ...raw, SubscribeURL: (raw.SubscribeURL ?? '').replace(/Token=.*/, 'Token=0') };
    expect(await codeOfAsync(verifySnsSignature(parseSnsMessage(forged), serveGenuine()))).toBe('PS_WEBHOOK_SIGNATURE');
  });
});

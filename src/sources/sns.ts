/**
 * Amazon SNS HTTPS deliveries: the envelope's three message types, the URL check that runs
 * before anything is fetched, the exact string-to-sign of each type, and signature verification
 * for SignatureVersion 1 (SHA1withRSA) and 2 (SHA256withRSA).
 *
 * Why our own code and not an npm validator: the two in use (sns-payload-validator,
 * sns-validator) fetch the certificate with their own `https.get` (the first takes at most an
 * https.Agent), so tests cannot serve it through an injected fetcher; neither sets a timeout or
 * caps the response; sns-validator keeps a module-wide, unbounded cache, and
 * sns-payload-validator caches whatever body the URL answered, a non-200 page included. The
 * verification itself is a few lines of node:crypto; the rules below are AWS's documented ones.
 */
import { X509Certificate, createVerify } from 'node:crypto';
import { z } from 'zod';
import { PulumiScaleError } from '../errors.js';
import { parseWith } from './common.js';

/** Fetches a PEM certificate from an already-checked SNS URL (same shape as http/deps.ts). */
export type CertFetcher = (url: string) => Promise<string>;

// Signed fields are optional in the schema so that an unsigned envelope still parses when
// verification is off; the verifier insists on them.
const signed = {
  MessageId: z.string().min(1),
  TopicArn: z.string().min(1),
  Message: z.string(),
  Timestamp: z.string().min(1),
  SignatureVersion: z.string().optional(),
  Signature: z.string().optional(),
  SigningCertURL: z.string().optional(),
};

const notificationSchema = z.object({
  Type: z.literal('Notification'),
  ...signed,
  // Absent when the publisher gave none; Lambda's view of SNS writes null instead.
  Subject: z.string().nullable().optional(),
  UnsubscribeURL: z.string().optional(),
});

const confirmationFields = { ...signed, Token: z.string().min(1), SubscribeURL: z.string().min(1) };

/** The SNS envelope: a discriminated union on `Type`. Unknown extra fields are tolerated. */
export const snsMessageSchema = z.discriminatedUnion('Type', [
  notificationSchema,
  z.object({ Type: z.literal('SubscriptionConfirmation'), ...confirmationFields }),
  z.object({ Type: z.literal('UnsubscribeConfirmation'), ...confirmationFields }),
]);

/** Any SNS message. */
export type SnsMessage = z.output<typeof snsMessageSchema>;
/** An SNS Notification (carries the CloudWatch alarm in `Message`). */
export type SnsNotification = Extract<SnsMessage, { Type: 'Notification' }>;
/** A SubscriptionConfirmation or UnsubscribeConfirmation. */
export type SnsConfirmation = Exclude<SnsMessage, SnsNotification>;

/** The `Type` values of SNS HTTP(S) deliveries. */
export const SNS_TYPES = ['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const;

/**
 * True when a parsed body is meant as an SNS envelope rather than a raw-delivery message: it
 * has a `Type` field, which no CloudWatch alarm message has. A broken envelope then fails its
 * schema with a useful message instead of being mistaken for an alarm.
 */
export function isSnsEnvelope(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && 'Type' in body;
}

/** Validates an SNS envelope; failures are PS_PAYLOAD_INVALID with zod's issues. */
export function parseSnsMessage(body: unknown): SnsMessage {
  return parseWith(snsMessageSchema, body, 'the SNS message');
}

// An AWS region: a two-letter area, an optional partition mark (us-gov-west-1, us-iso-east-1,
// us-isob-east-1), a direction word and a number (eu-central-2, ap-southeast-4, cn-northwest-1).
// Only a region may sit between `sns.` and `.amazonaws.com`: a looser "words and dashes" also
// matches S3 bucket hosts (`sns.s3-ap-southeast-2.amazonaws.com`, `sns.s3.amazonaws.com`), which
// whoever owns a bucket named `sns` can fill with a certificate of their own.
const AWS_REGION = /^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;
// `sns.<region>.amazonaws.com`, or `.amazonaws.com.cn` for the China partition's regions only.
const SNS_HOST = /^sns\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;
// Where SNS publishes its signing certificates: `/SimpleNotificationService-<hex id>.pem`.
const SNS_CERT_PATH = /^\/SimpleNotificationService-[0-9A-Za-z]+\.pem$/;

/** True when `hostname` (already lower-cased by URL) is an SNS endpoint of an AWS region. */
function isSnsHost(hostname: string): boolean {
  const m = SNS_HOST.exec(hostname);
  if (!m) return false;
  const region = m[1] ?? '';
  return AWS_REGION.test(region) && region.startsWith('cn-') === (m[2] !== undefined);
}

/**
 * Checks a URL found in an SNS message before anything is fetched from it: https, an SNS host
 * (`sns.<region>.amazonaws.com`, or `….amazonaws.com.cn` for a `cn-` region) on the default
 * port, no credentials; a certificate must also sit at AWS's path,
 * `/SimpleNotificationService-<id>.pem`, with no query or fragment (a SubscribeURL may have any
 * path and query). Returns the normalised URL; throws PS_CERT_URL_REJECTED otherwise, so a
 * forged message can never make the daemon call anywhere.
 */
export function checkSnsUrl(raw: string | undefined, kind: 'SigningCertURL' | 'SubscribeURL'): URL {
  const reject = (why: string) =>
    new PulumiScaleError('PS_CERT_URL_REJECTED', `${kind} ${JSON.stringify((raw ?? '').slice(0, 200))} rejected: ${why}`);
  if (raw === undefined || raw === '') throw reject('missing');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw reject('not a URL');
  }
  if (url.protocol !== 'https:') throw reject('not https');
  if (url.username !== '' || url.password !== '') throw reject('carries credentials');
  if (url.port !== '') throw reject('not on the default https port');
  if (!isSnsHost(url.hostname)) throw reject('not an SNS host (sns.<region>.amazonaws.com[.cn])');
  // `href` rather than `search`/`hash`, which read '' for a bare trailing `?` or `#`.
  if (kind === 'SigningCertURL' && (!SNS_CERT_PATH.test(url.pathname) || /[?#]/.test(url.href))) {
    throw reject('not an SNS certificate path (/SimpleNotificationService-<id>.pem, no query)');
  }
  return url;
}

/** The fields signed for each type, in AWS's order (byte order of the names). */
const SIGNED_FIELDS = {
  Notification: ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type'],
  SubscriptionConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
  UnsubscribeConfirmation: ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'],
} as const satisfies Record<SnsMessage['Type'], readonly string[]>;

/**
 * The string SNS signs: for each signed field present, its name, a newline, its value, a
 * newline. `Subject` is left out when absent (or null), as SNS leaves it out of the message.
 */
export function snsStringToSign(msg: SnsMessage): string {
  const values = msg as unknown as Record<string, unknown>;
  let out = '';
  for (const field of SIGNED_FIELDS[msg.Type]) {
    const value = values[field];
    if (typeof value !== 'string') continue;
    out += `${field}\n${value}\n`;
  }
  return out;
}

/** SignatureVersion -> the node:crypto algorithm of the RSA signature. */
const ALGORITHMS: Record<string, string> = { '1': 'RSA-SHA1', '2': 'RSA-SHA256' };

/**
 * Verifies an SNS message's signature: checks SigningCertURL before fetching it, fetches the
 * certificate through `fetchCert`, and checks the signature over the type's string-to-sign.
 * Throws PS_WEBHOOK_SIGNATURE (unsigned, unknown version, bad signature), PS_CERT_URL_REJECTED
 * (and nothing is fetched) or PS_CERT_FETCH_FAILED (SNS retries those: the answer is 5xx).
 */
export async function verifySnsSignature(msg: SnsMessage, fetchCert: CertFetcher): Promise<void> {
  if (msg.Signature === undefined || msg.Signature === '' || msg.SignatureVersion === undefined) {
    throw new PulumiScaleError('PS_WEBHOOK_SIGNATURE', 'the SNS message is not signed (no Signature or SignatureVersion)');
  }
  const algorithm = ALGORITHMS[msg.SignatureVersion];
  if (algorithm === undefined) {
    throw new PulumiScaleError('PS_WEBHOOK_SIGNATURE', `SignatureVersion ${JSON.stringify(msg.SignatureVersion)} is not supported (1 or 2)`);
  }
  const url = checkSnsUrl(msg.SigningCertURL, 'SigningCertURL');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(await fetchCert(url.href));
  } catch (err) {
    if (err instanceof PulumiScaleError) throw err;
    throw new PulumiScaleError('PS_CERT_FETCH_FAILED', `the SNS signing certificate ${url.href} could not be had: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let ok: boolean;
  try {
    ok = createVerify(algorithm).update(snsStringToSign(msg), 'utf8').verify(cert.publicKey, msg.Signature, 'base64');
  } catch {
    // A key or signature node:crypto cannot even parse is as bad as a wrong one.
    ok = false;
  }
  if (!ok) throw new PulumiScaleError('PS_WEBHOOK_SIGNATURE', `the SNS message ${msg.MessageId} has a signature that does not verify`);
}

/** Options of {@link createCertCache}. */
export interface CertCacheOptions {
  /** Certificates kept (default 64); past it the oldest is dropped. */
  max?: number;
  /**
   * Fetches in flight at once (default 4). A miss past it is refused at once with
   * PS_CERT_FETCH_FAILED (502, so SNS retries later) instead of waiting in a queue: SNS uses a
   * handful of certificates, which stay cached, so only a flood of forged messages naming
   * distinct URLs reaches the bound, and it must open no more sockets nor hold more requests.
   */
  maxInFlight?: number;
}

/** A cached certificate fetcher, with gauges for tests and metrics. */
export type CertCache = CertFetcher & {
  /** Certificates cached or being fetched. */
  size(): number;
  /** Fetches not yet settled. */
  inFlight(): number;
};

/**
 * Wraps a fetcher with a certificate cache: one fetch per URL, shared by concurrent requests,
 * and at most `maxInFlight` fetches at once. Only a body that parses as a certificate is kept;
 * a failed or refused fetch is forgotten so that the next delivery (SNS retries) tries again.
 * SNS rotates certificates rarely and the URL names the certificate, so entries never go
 * stale; `max` bounds memory (oldest entry dropped). Make one per daemon: the bound is its own.
 */
export function createCertCache(fetch: CertFetcher, opts: CertCacheOptions = {}): CertCache {
  const max = opts.max ?? 64;
  const maxInFlight = opts.maxInFlight ?? 4;
  const cache = new Map<string, Promise<string>>();
  let inFlight = 0;
  const cached = (url: string): Promise<string> => {
    const hit = cache.get(url);
    if (hit) return hit;
    if (inFlight >= maxInFlight) {
      return Promise.reject(
        new PulumiScaleError('PS_CERT_FETCH_FAILED', `${maxInFlight} SNS certificate fetches are already under way; ${url} is not fetched now, SNS retries`),
      );
    }
    inFlight += 1;
    // The executor turns a fetcher that throws synchronously into a rejection, so the slot is freed.
    const pending = new Promise<string>((resolve) => resolve(fetch(url)))
      .finally(() => {
        inFlight -= 1;
      })
      .then((pem) => {
        new X509Certificate(pem); // throws on anything that is not a certificate, so it is not cached
        return pem;
      });
    cache.set(url, pending);
    pending.catch(() => {
      if (cache.get(url) === pending) cache.delete(url);
    });
    if (cache.size > max) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    return pending;
  };
  return Object.assign(cached, { size: () => cache.size, inFlight: () => inFlight });
}

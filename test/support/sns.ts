/**
 * SNS test kit: a key and self-signed certificate made at run time (nothing secret is kept in
 * the repo), a signer with its own string-to-sign (written apart from src/ so that a mistake
 * there is not mirrored here), and a local HTTPS server that serves the certificate through the
 * daemon's real https fetch code, reached by a fetcher that maps the SNS URL to 127.0.0.1.
 */
import { execFileSync } from 'node:child_process';
import { createSign, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { httpsGetText } from '../../src/http/sns-client.js';

/** A signing key, its certificate, and a second key that SNS never used. */
export interface TestPki {
  /** PEM private key that signs messages (and serves TLS for the local cert server). */
  key: string;
  /** PEM self-signed certificate of `key`, for the SNS host and 127.0.0.1. */
  cert: string;
  /** A different PEM private key: a message signed with it must not verify. */
  otherKey: string;
}

/** Where SNS publishes its signing certificates (the shape AWS uses). */
export const TEST_CERT_URL = 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem';
/** The topic the fixtures were published to. */
export const TEST_TOPIC_ARN = 'arn:aws:sns:us-east-1:123456789012:pulumiscale-alarms';

/** Makes a fresh key pair and certificate with the openssl CLI (Debian's `openssl` package). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), 'pulumiscale-sns-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
        '-keyout', keyFile, '-out', certFile,
        '-subj', '/CN=sns.us-east-1.amazonaws.com',
        '-addext', 'subjectAltName=DNS:sns.us-east-1.amazonaws.com,IP:127.0.0.1',
      ], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`the SNS tests need the openssl CLI (bash scripts/setup-peers.sh installs it; npm test runs it): ${(err as Error).message}`, { cause: err });
    }
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return {
      key: readFileSync(keyFile, 'utf8'),
      cert: readFileSync(certFile, 'utf8'),
      otherKey: other.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A fixture file under test/fixtures, parsed as JSON. */
export function fixture<T = Record<string, unknown>>(relative: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/${relative}`, import.meta.url), 'utf8')) as T;
}

/** The canonical string, per AWS's documentation: name and value lines, in a fixed order. */
export function expectedStringToSign(msg: Record<string, unknown>): string {
  const fields =
    msg.Type === 'Notification'
      ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return fields
    .filter((f) => typeof msg[f] === 'string')
    .map((f) => `${f}\n${msg[f] as string}\n`)
    .join('');
}

/** Options of {@link signSns}. */
export interface SignOptions {
  /** SignatureVersion: '1' (SHA1withRSA, the default) or '2' (SHA256withRSA). */
  version?: '1' | '2';
  /** SigningCertURL to put in the message. */
  certUrl?: string;
}

/** Returns a copy of an SNS message signed with `key`, as SNS would deliver it. */
export function signSns<T extends Record<string, unknown>>(msg: T, key: string, opts: SignOptions = {}): T {
  const version = opts.version ?? '1';
  const signer = createSign(version === '1' ? 'RSA-SHA1' : 'RSA-SHA256');
  signer.update(expectedStringToSign(msg), 'utf8');
  return {
    ...msg,
    SignatureVersion: version,
    Signature: signer.sign(key, 'base64'),
    SigningCertURL: opts.certUrl ?? TEST_CERT_URL,
  };
}

/** What a route of the local server answers: a body, or a handler of its own. */
export type CertRoute = string | ((req: IncomingMessage, res: ServerResponse) => void);

/** A local HTTPS server standing in for the SNS certificate host. */
export interface CertServer {
  /** The port on 127.0.0.1. */
  port: number;
  /** Paths requested from the server, in order. */
  requests: string[];
  /** SNS URLs the fetcher was asked for, in order (an off-host URL must never appear). */
  fetched: string[];
  /** A fetcher for `AppDeps.sns.fetchCert`: real https, to 127.0.0.1 instead of the SNS host. */
  fetchCert: (url: string) => Promise<string>;
  /** A confirmer for `AppDeps.sns.confirmSubscription`, through the same server. */
  confirm: (url: string) => Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the server. By default it serves `pki.cert` at the path of {@link TEST_CERT_URL}, 200
 * with an empty body for any path with a query (SubscribeURL), and 404 for the rest.
 */
export async function startCertServer(pki: TestPki, routes: Record<string, CertRoute> = {}, timeoutMs = 2_000): Promise<CertServer> {
  const all: Record<string, CertRoute> = { [new URL(TEST_CERT_URL).pathname]: pki.cert, ...routes };
  const requests: string[] = [];
  const fetched: string[] = [];
  const server = https.createServer({ key: pki.key, cert: pki.cert }, (req, res) => {
    const url = req.url ?? '/';
    requests.push(url);
    const route = all[url.split('?')[0] ?? url];
    if (typeof route === 'function') return route(req, res);
    if (route !== undefined) return void res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(route);
    if (url.includes('?')) return void res.writeHead(200, { 'content-type': 'text/xml' }).end('<ConfirmSubscriptionResponse/>');
    res.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const local = (url: string) => {
    fetched.push(url);
    const u = new URL(url);
    return httpsGetText(`https://127.0.0.1:${port}${u.pathname}${u.search}`, { ca: pki.cert, timeoutMs });
  };
  return {
    port,
    requests,
    fetched,
    fetchCert: local,
    confirm: async (url) => {
      await local(url);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

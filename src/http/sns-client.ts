/**
 * The daemon's only outbound HTTP: fetching SNS signing certificates and GETting a
 * SubscribeURL. Both run on URLs already passed through `checkSnsUrl`, yet the answer still
 * comes from the network, so every request has a timeout, a response size cap, and follows no
 * redirect (a redirect could lead off the SNS hosts after the check). It lives in http/, the
 * daemon's network edge, so that sources/ stays free of I/O.
 */
import https from 'node:https';
import type { CertFetcher } from '../sources/sns.js';

/** Limits and trust for an outbound GET. */
export interface HttpsGetOptions {
  /** Abort when the whole exchange takes longer (default 5 s): SNS waits on our answer. */
  timeoutMs?: number;
  /** Abort when the body grows past this many bytes (default 64 KiB; a PEM is about 2 KiB). */
  maxBytes?: number;
  /** Extra CA certificates to trust, PEM (tests serve from a self-signed local server). */
  ca?: string | string[];
}

/** GETs an https URL and resolves with its body as UTF-8 text; any non-2xx status rejects. */
export function httpsGetText(url: string, opts: HttpsGetOptions = {}): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    const req = https.get(url, { timeout: timeoutMs, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        res.resume();
        reject(new Error(`GET ${url} answered ${status}`));
        return;
      }
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > maxBytes) {
        req.destroy(new Error(`GET ${url}: body of ${declared} bytes exceeds ${maxBytes}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          req.destroy(new Error(`GET ${url}: body exceeds ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    // `timeout` only covers socket idleness; this one bounds the whole exchange.
    const timer = setTimeout(() => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)), timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** The default certificate fetcher: an https GET with the limits above. */
export function createHttpsCertFetcher(opts: HttpsGetOptions = {}): CertFetcher {
  return (url) => httpsGetText(url, opts);
}

/** The default subscription confirmer: GETs the (already checked) SubscribeURL, body ignored. */
export function createHttpsSubscriptionConfirmer(opts: HttpsGetOptions = {}): (url: string) => Promise<void> {
  return async (url) => {
    await httpsGetText(url, opts);
  };
}

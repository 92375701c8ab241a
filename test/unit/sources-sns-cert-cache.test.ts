/**
 * The certificate cache's bound on fetches in flight, with a fetcher whose answers each test
 * gives (promises it resolves): no sleeps, no sockets.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { createCertCache, parseSnsMessage, verifySnsSignature } from '../../src/sources/sns.js';
import { fixture, makeTestPki, signSns, type TestPki } from '../support/sns.js';
import { codeOfAsync } from '../support/errors.js';

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});


describe('createCertCache: a bounded number of fetches in flight', () => {
  const certUrl = (n: number | string) => `https://sns.us-east-1.amazonaws.com/SimpleNotificationService-${n}.pem`;

  /** A fetcher whose answers the test gives, one URL at a time: no sleeps, no sockets. */
  function blockingFetcher() {
    const waiting = new Map<string, { resolve: (pem: string) => void; reject: (err: Error) => void }>();
    const fetch = vi.fn((url: string) => new Promise<string>((resolve, reject) => void waiting.set(url, { resolve, reject })));
    const answer = (url: string) => {
      const w = waiting.get(url);
      if (!w) throw new Error(`${url} was never fetched`);
      return w;
    };
    return { fetch, answer };
  }

  it('refuses a miss past the bound at once with PS_CERT_FETCH_FAILED, without calling the fetcher', async () => {
    const { fetch, answer } = blockingFetcher();
    const cached = createCertCache(fetch, { maxInFlight: 2 });
    const running = [cached(certUrl(1)), cached(certUrl(2))];
    expect(await codeOfAsync(cached(certUrl(3)))).toBe('PS_CERT_FETCH_FAILED');
    expect(fetch.mock.calls.map(([url]) => url)).toEqual([certUrl(1), certUrl(2)]);
    expect(cached.inFlight()).toBe(2);
    answer(certUrl(1)).resolve(pki.cert);
    answer(certUrl(2)).resolve(pki.cert);
    await Promise.all(running);
  });

  it('holds at most 4 fetches by default', async () => {
    const { fetch, answer } = blockingFetcher();
    const cached = createCertCache(fetch);
    const running = [1, 2, 3, 4].map((n) => cached(certUrl(n)));
    expect(await codeOfAsync(cached(certUrl(5)))).toBe('PS_CERT_FETCH_FAILED');
    expect(fetch).toHaveBeenCalledTimes(4);
    for (const n of [1, 2, 3, 4]) answer(certUrl(n)).resolve(pki.cert);
    await Promise.all(running);
  });

  it('a request for a URL already being fetched shares that fetch and takes no slot', async () => {
    const { fetch, answer } = blockingFetcher();
    const cached = createCertCache(fetch, { maxInFlight: 1 });
    const first = cached(certUrl(1));
    const again = cached(certUrl(1));
    expect(cached.inFlight()).toBe(1);
    answer(certUrl(1)).resolve(pki.cert);
    expect(await Promise.all([first, again])).toEqual([pki.cert, pki.cert]);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('a settled fetch frees its slot, whether it brought a certificate or failed', async () => {
    const { fetch, answer } = blockingFetcher();
    const cached = createCertCache(fetch, { maxInFlight: 1 });
    const ok = cached(certUrl(1));
    answer(certUrl(1)).resolve(pki.cert);
    await ok;
    const failing = cached(certUrl(2));
    answer(certUrl(2)).reject(new Error('ECONNRESET'));
    await expect(failing).rejects.toThrow('ECONNRESET');
    expect(cached.inFlight()).toBe(0);
    const next = cached(certUrl(3));
    answer(certUrl(3)).resolve(pki.cert);
    await expect(next).resolves.toBe(pki.cert);
  });

  it('a fetcher that throws instead of rejecting frees its slot too', async () => {
    const cached = createCertCache(() => {
      throw new Error('no socket');
    }, { maxInFlight: 1 });
    await expect(cached(certUrl(1))).rejects.toThrow('no socket');
    await expect(cached(certUrl(2))).rejects.toThrow('no socket');
    expect(cached.inFlight()).toBe(0);
  });

  it('a refused URL is not cached: it is fetched once a slot is free', async () => {
    const { fetch, answer } = blockingFetcher();
    const cached = createCertCache(fetch, { maxInFlight: 1 });
    const first = cached(certUrl(1));
    expect(await codeOfAsync(cached(certUrl(2)))).toBe('PS_CERT_FETCH_FAILED');
    answer(certUrl(1)).resolve(pki.cert);
    await first;
    const retried = cached(certUrl(2));
    answer(certUrl(2)).resolve(pki.cert);
    await expect(retried).resolves.toBe(pki.cert);
    expect(cached.size()).toBe(2);
  });

  it('verifySnsSignature answers a refused fetch with PS_CERT_FETCH_FAILED (502: SNS retries)', async () => {
    const { fetch, answer } = blockingFetcher();
    const cached = createCertCache(fetch, { maxInFlight: 1 });
    const busy = cached(certUrl('busy'));
    const msg = parseSnsMessage(signSns(fixture('cloudwatch/sns-notification-single-alarm.json'), pki.key));
    expect(await codeOfAsync(verifySnsSignature(msg, cached))).toBe('PS_CERT_FETCH_FAILED');
    expect(fetch).toHaveBeenCalledTimes(1);
    answer(certUrl('busy')).resolve(pki.cert);
    await busy;
  });
});

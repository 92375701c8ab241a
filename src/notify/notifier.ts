/**
 * The notifier: delivers the outbox. One loop per destination takes that destination's oldest
 * message, formats it for the platform (formats/), posts it, and removes it once the platform
 * took it; so each destination gets its messages in order, and a restart loses none (what is
 * not removed is sent at the next start, at least once).
 *
 * Why it cannot slow the engine: the engine only appends events; their messages are written in
 * the same transaction by the store (route.ts), and this loop reads them on its own time. A
 * slow or failing platform holds back only its own queue.
 *
 * Pacing and failures, per destination:
 * - at most `ratePerSecond` messages a second (the platform's documented pace by default);
 * - 429: waits what `Retry-After` says (seconds or an HTTP date), the attempt not counted;
 * - 5xx, 408, a network error or a timeout: retried with exponential backoff and full jitter;
 * - any other 4xx: the platform refuses this message for good (a bad payload, an archived
 *   channel), so it is dropped with a log line, rather than blocking every later message;
 * - a message older than `maxAge` is dropped with a log line.
 * Every outcome is published on the bus (`notification`), for the metrics.
 *
 * Webhook URLs are secrets: no log line here carries one, nor an error that could quote it.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Clock } from '../engine/clock.js';
import type { EventBus } from '../observe/bus.js';
import type { OutboxMessage, Store } from '../store/store.js';
import { formats, type DestinationType, type OutgoingMessage } from './formats/index.js';

/** One configured destination. */
export type DestinationConfig = Config['notifications'][number];

/** What happened to one attempt (a metric label). */
export type DeliveryOutcome = 'sent' | 'retried' | 'rate-limited' | 'rejected' | 'expired';

/** The platform's answer to one post. */
export interface PostResult {
  status: number;
  /** The `Retry-After` header, as sent. */
  retryAfter: string | null;
}

/** Posts one message; rejects on a network error or when `signal` aborts. */
export type Poster = (url: string, message: OutgoingMessage, signal: AbortSignal) => Promise<PostResult>;

/** What the notifier is given. */
export interface NotifierOptions {
  store: Pick<Store, 'nextMessage' | 'removeMessage' | 'deferMessage' | 'dropMessagesExcept'>;
  destinations: readonly DestinationConfig[];
  /** The daemon's public address for links, or null. */
  publicUrl: string | null;
  clock: Clock;
  bus: EventBus;
  logger: Logger;
  /** Posts over HTTP; `fetch` by default. */
  post?: Poster;
  /** The first retry backoff, ms (doubling, capped at {@link MAX_BACKOFF_MS}). Default 1,000. */
  baseBackoffMs?: number;
  /** A number in [0, 1) for jitter. Default Math.random. */
  random?: () => number;
}

/** The longest wait between two tries of one message. */
export const MAX_BACKOFF_MS = 300_000;

/** How long `close` lets a post in flight finish before aborting it. */
export const CLOSE_GRACE_MS = 1_000;

/** How often an idle loop looks at its queue even when nothing woke it (a safety net). */
const IDLE_RECHECK_MS = 10_000;

/** The platforms' documented paces, messages per second per webhook. */
const DEFAULT_RATE: Record<DestinationType, number> = {
  // Slack: about one message a second per incoming webhook.
  slack: 1,
  // Discord: 30 messages a minute per webhook's channel.
  discord: 0.5,
  // Teams Workflows: Power Automate throttles per flow; one a second stays well inside it.
  teams: 1,
  webhook: 10,
};

/** Delivers the outbox, one loop per destination. */
export class Notifier {
  readonly #opts: NotifierOptions;
  readonly #post: Poster;
  readonly #baseBackoffMs: number;
  readonly #random: () => number;
  readonly #loops: Loop[];
  #closed = false;

  constructor(opts: NotifierOptions) {
    this.#opts = opts;
    this.#post = opts.post ?? fetchPoster;
    this.#baseBackoffMs = opts.baseBackoffMs ?? 1_000;
    this.#random = opts.random ?? Math.random;
    this.#loops = opts.destinations.map((d) => ({ destination: d, end: null, pokable: false, poked: false, running: null, lastSent: Number.NEGATIVE_INFINITY, abort: null }));
  }

  /**
   * Starts every destination's loop; what the outbox already holds is sent first. Messages of a
   * destination no longer configured are dropped first, with a log line: nothing would send them.
   */
  start(): void {
    const names = this.#opts.destinations.map((d) => d.name);
    void this.#opts.store.dropMessagesExcept(names).then(
      (dropped) => {
        for (const [destination, count] of dropped) this.#opts.logger.warn({ destination, count }, 'dropped the outbox messages of a destination no longer configured');
      },
      (err: unknown) => this.#opts.logger.warn({ err }, 'could not look for outbox messages of removed destinations'),
    );
    for (const loop of this.#loops) loop.running = this.#run(loop);
  }

  /**
   * Something was added to the outbox: idle loops look again (a loop waiting out a pace or a
   * backoff keeps waiting). Cheap; call it for every event.
   */
  poke(): void {
    for (const loop of this.#loops) {
      if (loop.pokable) loop.end?.();
      else loop.poked = true;
    }
  }

  /**
   * Stops: no new attempt starts; a post in flight gets {@link CLOSE_GRACE_MS} to finish (and is
   * removed if it succeeded), then is aborted, so a drain is not held up by a slow platform.
   * What is left stays in the outbox for the next start (an aborted post may then arrive twice).
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const loop of this.#loops) loop.end?.();
    const grace = this.#opts.clock.setTimer(() => {
      for (const loop of this.#loops) loop.abort?.abort(new Error('the notifier is closing'));
    }, CLOSE_GRACE_MS);
    await Promise.all(this.#loops.map((l) => l.running ?? Promise.resolve()));
    this.#opts.clock.clearTimer(grace);
  }

  async #run(loop: Loop): Promise<void> {
    const d = loop.destination;
    let storeFailures = 0;
    while (!this.#closed) {
      let message: OutboxMessage | null;
      try {
        message = await this.#opts.store.nextMessage(d.name, d.timeout);
        storeFailures = 0;
      } catch (err) {
        storeFailures += 1;
        this.#opts.logger.error({ destination: d.name, err }, 'could not read the notification outbox; will try again');
        await this.#sleep(loop, this.#backoff(storeFailures));
        continue;
      }
      if (message === null) {
        // A poke that came while the queue was being read counts: look again at once.
        if (loop.poked) loop.poked = false;
        else await this.#sleep(loop, IDLE_RECHECK_MS, { pokable: true });
        continue;
      }
      try {
        await this.#deliver(loop, message);
        storeFailures = 0;
      } catch (err) {
        // The store refused to remove or defer: the message is still the head; try it later.
        storeFailures += 1;
        this.#opts.logger.error({ destination: d.name, err }, 'could not record a notification delivery; will try again');
        await this.#sleep(loop, this.#backoff(storeFailures));
      }
    }
  }

  /** One attempt at the head message, including the waits before it. */
  async #deliver(loop: Loop, message: OutboxMessage): Promise<void> {
    const d = loop.destination;
    const { clock, logger } = this.#opts;
    const age = clock.now() - Date.parse(message.createdAt);
    if (age > d.maxAge) {
      this.#report(d.name, 'expired');
      await this.#opts.store.removeMessage(message.seq);
      logger.warn({ destination: d.name, eventId: message.event.id, kind: message.event.kind, target: message.event.target, ageMs: age, attempts: message.attempts }, 'notification dropped: older than its maxAge');
      return;
    }
    const rate = d.ratePerSecond ?? DEFAULT_RATE[d.type];
    const at = Math.max(message.notBefore === null ? 0 : Date.parse(message.notBefore), loop.lastSent + 1000 / rate);
    if (at > clock.now()) {
      await this.#sleep(loop, at - clock.now());
      return;
    }
    if (this.#closed) return;

    const outgoing = formats[d.type](message.event, { publicUrl: this.#opts.publicUrl, secret: d.secret ?? null, now: clock.now() });
    loop.lastSent = clock.now();
    let result: PostResult | Error;
    const controller = new AbortController();
    const timer = clock.setTimer(() => controller.abort(new Error(`no answer within ${d.timeout} ms`)), d.timeout);
    try {
      loop.abort = controller;
      result = await this.#post(d.url, outgoing, controller.signal);
    } catch (err) {
      result = err instanceof Error ? err : new Error(String(err));
    } finally {
      loop.abort = null;
      clock.clearTimer(timer);
    }
    // Cut off by close: it stays queued as it was, for the next start.
    if (this.#closed && controller.signal.aborted) return;

    // Each outcome is counted as soon as it is known, before the outbox is updated: a scrape
    // then never finds a message gone from the queue (`pulumiscale_notifications_queued`) but
    // not yet in `pulumiscale_notifications_total`.
    const where = { destination: d.name, eventId: message.event.id, target: message.event.target, kind: message.event.kind };
    if (!(result instanceof Error) && result.status >= 200 && result.status < 300) {
      this.#report(d.name, 'sent');
      await this.#opts.store.removeMessage(message.seq);
      logger.debug({ ...where, status: result.status }, 'notification sent');
      return;
    }
    if (!(result instanceof Error) && result.status === 429) {
      // As asked; without a Retry-After it counts as a failed attempt, so the backoff grows.
      const asked = retryAfterMs(result.retryAfter, clock.now());
      const attempts = asked === null ? message.attempts + 1 : message.attempts;
      const waitMs = asked ?? this.#backoff(attempts);
      this.#report(d.name, 'rate-limited');
      await this.#opts.store.deferMessage(message.seq, attempts, new Date(clock.now() + waitMs).toISOString());
      logger.warn({ ...where, waitMs }, 'notification rate-limited by the platform; waiting as it asked');
      return;
    }
    if (!(result instanceof Error) && result.status >= 400 && result.status < 500 && result.status !== 408) {
      this.#report(d.name, 'rejected');
      await this.#opts.store.removeMessage(message.seq);
      logger.error({ ...where, status: result.status }, 'notification refused by the platform (a 4xx other than 408 and 429): dropped; check the destination');
      return;
    }
    const attempts = message.attempts + 1;
    const waitMs = this.#backoff(attempts);
    this.#report(d.name, 'retried');
    await this.#opts.store.deferMessage(message.seq, attempts, new Date(clock.now() + waitMs).toISOString());
    // An error's message is our own text or the runtime's (e.g. "fetch failed"); any URL in it
    // is cut out all the same, since a webhook URL is a secret. Its cause's code says the rest.
    const failure = result instanceof Error ? { error: withoutUrls(result.message), code: causeCode(result) } : { status: result.status };
    logger.warn({ ...where, ...failure, attempts, waitMs }, 'notification not delivered; will try again');
  }

  /** Exponential backoff with full jitter: a random wait up to base * 2^(n-1), capped. */
  #backoff(attempts: number): number {
    const cap = Math.min(MAX_BACKOFF_MS, this.#baseBackoffMs * 2 ** Math.min(30, Math.max(0, attempts - 1)));
    return Math.max(1, Math.round(cap * this.#random()));
  }

  #report(destination: string, outcome: DeliveryOutcome): void {
    this.#opts.bus.publish({ type: 'notification', destination, outcome });
  }

  /** Waits `ms`, or less when the notifier closes (or, when `pokable`, when poked). */
  #sleep(loop: Loop, ms: number, opts: { pokable?: boolean } = {}): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.#opts.clock.clearTimer(timer);
        loop.end = null;
        loop.pokable = false;
        resolve();
      };
      const timer = this.#opts.clock.setTimer(done, ms);
      loop.end = done;
      loop.pokable = opts.pokable ?? false;
    });
  }
}

/** A destination's loop state. */
interface Loop {
  destination: DestinationConfig;
  /** Ends the current sleep early. */
  end: (() => void) | null;
  /** Whether the current sleep ends on a poke (an idle wait) or only on close (a pace, a backoff). */
  pokable: boolean;
  /** A poke came while the loop was not in an idle wait. */
  poked: boolean;
  running: Promise<void> | null;
  /** When the last attempt started (ms), for the pace. */
  lastSent: number;
  /** Aborts the post in flight, if one is. */
  abort: AbortController | null;
}

/** `Retry-After` in ms: delay-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number): number | null {
  if (header === null || header.trim() === '') return null;
  const text = header.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(MAX_BACKOFF_MS, Math.ceil(Number(text) * 1000));
  // Only an HTTP date (it starts with a day name): Date.parse alone would read "-1" or "in 3"
  // as dates in 2001, which would mean "at once".
  if (!/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /i.test(text)) return null;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.min(MAX_BACKOFF_MS, Math.max(0, date - now));
}

/** A message with every URL in it replaced, so that none reaches a log line. */
export function withoutUrls(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, '<url>');
}

function causeCode(err: Error): string | undefined {
  const cause = err.cause;
  return typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string' ? cause.code : undefined;
}

/** Posts with the runtime's `fetch`; the body is read and discarded so the connection is reused. */
export const fetchPoster: Poster = async (url, message, signal) => {
  const res = await fetch(url, { method: 'POST', headers: message.headers, body: message.body, signal, redirect: 'error' });
  await res.arrayBuffer().catch(() => undefined);
  return { status: res.status, retryAfter: res.headers.get('retry-after') };
};

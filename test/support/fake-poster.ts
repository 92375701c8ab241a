/**
 * A stand-in for the notifier's `post` (a {@link Poster}) for unit tests: it records every call
 * with the time it was made, answers from a script per URL (200 when the script is empty), and
 * can hold a post open until the test answers it, or until the notifier aborts it through its
 * signal, as `fetch` would. Tests wait on what it received, never on time passing.
 */
import type { OutgoingMessage } from '../../src/notify/formats/index.js';
import type { Poster, PostResult } from '../../src/notify/notifier.js';

/** What one post answers: a status, a rejection (a network error), or held open. */
export type Answer = PostResult | Error | 'hold';

/** A status answer, with `Retry-After` when given. */
export const answer = (status: number, retryAfter: string | null = null): PostResult => ({ status, retryAfter });

/** One call of the poster. */
export interface PostCall {
  url: string;
  message: OutgoingMessage;
  signal: AbortSignal;
  /** The clock's time when the call was made. */
  at: number;
  /** The body, parsed (the webhook format's body is the event itself). */
  body: { id?: string } & Record<string, unknown>;
  /** Ends a held call; a no-op for one already ended. */
  end(result: PostResult | Error): void;
  /** Whether the call has ended (answered, rejected, aborted). */
  readonly ended: boolean;
}

/** A list that resolves waiters as items arrive. */
export class Arrivals<T> {
  readonly items: T[] = [];
  readonly #waiters: { ready: () => boolean; resolve: () => void }[] = [];

  push(item: T): void {
    this.items.push(item);
    for (const w of [...this.#waiters]) {
      if (w.ready()) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /**
   * Resolves once `ready()` holds after an arrival (or at once). A guard of `guardMs` real
   * milliseconds turns a wait that will never end into a clear failure instead of a test timeout.
   */
  until(ready: (items: readonly T[]) => boolean, what: string, guardMs = 2_000): Promise<void> {
    const check = () => ready(this.items);
    if (check()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`still waiting for ${what} after ${guardMs} ms (have ${this.items.length})`));
      }, guardMs);
      const waiter = {
        ready: check,
        resolve: () => {
          clearTimeout(guard);
          resolve();
        },
      };
      this.#waiters.push(waiter);
    });
  }

  /** Resolves once at least `n` items arrived. */
  count(n: number, what = 'items'): Promise<void> {
    return this.until((items) => items.length >= n, `${n} ${what}`);
  }
}

/** The fake poster. */
export class FakePoster {
  readonly calls = new Arrivals<PostCall>();
  readonly #scripts = new Map<string, Answer[]>();

  constructor(private readonly now: () => number) {}

  /** Answers for the next calls to `url`, in order; 200 once they are used up. */
  script(url: string, ...answers: Answer[]): void {
    this.#scripts.set(url, [...(this.#scripts.get(url) ?? []), ...answers]);
  }

  /** The calls made to `url`. */
  to(url: string): PostCall[] {
    return this.calls.items.filter((c) => c.url === url);
  }

  /** The event ids posted to `url` (or to every URL), in order. */
  ids(url?: string): (string | undefined)[] {
    return (url === undefined ? this.calls.items : this.to(url)).map((c) => c.body.id);
  }

  /** Ends every call still held with a network error (for cleanup). */
  releaseAll(): void {
    for (const c of this.calls.items) c.end(new Error('released by the test'));
  }

  readonly post: Poster = (url, message, signal) => {
    const next = this.#scripts.get(url)?.shift() ?? answer(200);
    let resolvePost!: (r: PostResult) => void;
    let rejectPost!: (e: unknown) => void;
    const promise = new Promise<PostResult>((resolve, reject) => {
      resolvePost = resolve;
      rejectPost = reject;
    });
    let ended = false;
    const end = (result: PostResult | Error | { aborted: unknown }): void => {
      if (ended) return;
      ended = true;
      if (result instanceof Error) rejectPost(result);
      else if ('aborted' in result) rejectPost(result.aborted);
      else resolvePost(result);
    };
    // As fetch: an abort ends the post with the signal's reason.
    signal.addEventListener('abort', () => end({ aborted: signal.reason }), { once: true });
    const call: PostCall = {
      url,
      message,
      signal,
      at: this.now(),
      body: JSON.parse(message.body) as PostCall['body'],
      end,
      get ended() {
        return ended;
      },
    };
    this.calls.push(call);
    if (next !== 'hold') end(next);
    return promise;
  };
}

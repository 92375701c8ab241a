/**
 * The part of autocannon's programmatic API the benchmarks use (autocannon ships no types, and
 * @types/autocannon describes an older major). Field names follow its README.
 */
declare module 'autocannon' {
  namespace autocannon {
    /** One request of the pipeline a connection cycles through. */
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
    }

    interface Options {
      url: string;
      connections?: number;
      /** Seconds; ignored when `amount` is set. */
      duration?: number;
      /** Requests in all before the run ends. */
      amount?: number;
      method?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
      requests?: Request[];
      /** Replaces every `[<id>]` in a body with a fresh id, per request. */
      idReplacement?: boolean;
      /** Seconds a request may take before it counts as a timeout. */
      timeout?: number;
      renderProgressBar?: boolean;
      renderResultsTable?: boolean;
    }

    /** A histogram summary: average and percentiles (p50, p90, p99, p99_9…) as `pNN` keys. */
    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      total: number;
      p50: number;
      p90: number;
      p99: number;
    }

    interface Result {
      /** Seconds the run took. */
      duration: number;
      errors: number;
      timeouts: number;
      non2xx: number;
      '2xx': number;
      '4xx': number;
      '5xx': number;
      /** Milliseconds per request. */
      latency: Histogram;
      /** Requests per second, sampled each second; `total` is every completed request. */
      requests: Histogram & { sent: number };
    }
    /** A run in progress: awaitable for its result, stoppable early. */
    interface Instance extends PromiseLike<Result> {
      /** Ends the run now; it then resolves with what was measured so far. */
      stop(): void;
      /** Called on every response (autocannon's instance is an EventEmitter). */
      on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): this;
    }
  }

  function autocannon(opts: autocannon.Options): autocannon.Instance;
  export = autocannon;
}

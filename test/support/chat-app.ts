/**
 * `makeChatApp()`: as `makeTestApp()` (the real app on BASE_CONFIG with a FakeEngine and a
 * FakeStore), plus the chat plumbing `makeTestApp` leaves out: a recorder standing in for the
 * Slack response URL poster, so a test sees what a button press answered there.
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { buildApp } from '../../src/http/app.js';
import type { AppDeps } from '../../src/http/deps.js';
import { Metrics } from '../../src/observe/metrics.js';
import { BASE_CONFIG, deepMerge, FakeEngine, FakeStore } from './http.js';

/** What {@link makeChatApp} returns. */
export interface ChatApp {
  app: FastifyInstance;
  engine: FakeEngine;
  store: FakeStore;
  /** Every post to a response URL, in order. */
  responses: { url: string; body: unknown }[];
  close(): Promise<void>;
}

/** The real app with `config` deep-merged over BASE_CONFIG, at `now`. Call `close()` when done. */
export async function makeChatApp(opts: { config: Record<string, unknown>; now: () => number }): Promise<ChatApp> {
  const config = parseConfig(stringify(deepMerge(BASE_CONFIG, opts.config)), { file: 'test-config.yaml', baseDir: process.cwd(), env: {} });
  const store = new FakeStore(opts.now);
  const engine = new FakeEngine(config, store);
  const responses: ChatApp['responses'] = [];
  let n = 0;
  const deps: AppDeps = {
    config,
    engine,
    store,
    logger: pino({ level: 'silent' }),
    metrics: new Metrics({ defaultMetrics: false }),
    now: opts.now,
    newId: () => `id-${++n}`,
    chat: {
      respond: async (url, body) => {
        responses.push({ url, body });
      },
    },
  };
  const app = buildApp(deps);
  await app.ready();
  return { app, engine, store, responses, close: () => app.close() };
}

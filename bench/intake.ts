/**
 * Intake throughput: what it costs to acknowledge an alert durably. Each iteration posts one
 * Alertmanager notification through the real app (`app.inject()`), the real engine and a store;
 * the executor holds every operation, so intents coalesce as they would during a storm and the
 * measurement is the intake path alone. Baseline: the in-memory test store, in the same run.
 * Rounds alternate between the two so that drift on a shared machine hits both alike; the
 * report is the median of the rounds and the ratio of the medians.
 *
 *   npm run bench
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../src/config/load.js';
import { targetsOf } from '../src/config/load.js';
import { systemClock } from '../src/engine/clock.js';
import { Engine } from '../src/engine/engine.js';
import { buildApp } from '../src/http/app.js';
import { EventBus } from '../src/observe/bus.js';
import { Metrics } from '../src/observe/metrics.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { Store } from '../src/store/store.js';
import { FakeExecutor } from '../test/support/fake-executor.js';
import { MemoryStore } from '../test/support/memory-store.js';

const config = parseConfig(
  `
targets:
  web: { workDir: /nonexistent, stack: prod, configKey: web:replicas, min: 1, max: 100 }
`,
  { file: 'bench.yaml', baseDir: '/', env: {} },
);

const notification = JSON.stringify({
  version: '4',
  groupKey: '{}:{alertname="HighLoad"}',
  truncatedAlerts: 0,
  status: 'firing',
  receiver: 'pulumiscale',
  groupLabels: { alertname: 'HighLoad' },
  commonLabels: { alertname: 'HighLoad', pulumiscale_target: 'web' },
  commonAnnotations: {},
  externalURL: 'http://alertmanager:9093',
  alerts: [
    {
      status: 'firing',
      labels: { alertname: 'HighLoad', pulumiscale_target: 'web' },
      annotations: { pulumiscale_value: '91' },
      startsAt: '2026-11-27T10:00:00Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus:9090/graph',
      fingerprint: 'c0ffee',
    },
  ],
});

async function intakeApp(store: Store) {
  await store.init();
  const executor = new FakeExecutor();
  executor.holding = true; // every operation waits, so intents keep coalescing into one
  const logger = pino({ level: 'silent' });
  const engine = new Engine({
    store,
    executor,
    targets: targetsOf(config),
    clock: systemClock,
    bus: new EventBus(),
    logger,
    dryRun: false,
    concurrency: 2,
    retry: config.engine.retry,
    operationTimeout: config.engine.operationTimeout,
    cancelGrace: config.engine.cancelGrace,
    evaluationInterval: config.engine.evaluationInterval,
  });
  await engine.start();
  const app = buildApp({ config, engine, store, logger, metrics: new Metrics({ defaultMetrics: false }) });
  await app.ready();
  const post = async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/webhooks/alertmanager',
      headers: { 'content-type': 'application/json' },
      payload: notification,
    });
    if (res.statusCode !== 202) throw new Error(`unexpected ${res.statusCode}: ${res.body}`);
  };
  return { post, close: () => app.close() };
}

/** Runs `fn` back to back for `ms` and returns operations per second. */
async function rate(fn: () => Promise<void>, ms: number): Promise<number> {
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    await fn();
    n++;
  }
  return (n * 1000) / (performance.now() - start);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 1000);

const dir = mkdtempSync(path.join(tmpdir(), 'ps-bench-'));
const cases = {
  'in-memory store (baseline: nothing durable)': await intakeApp(new MemoryStore()),
  'SQLite store, WAL, synchronous=FULL (the daemon)': await intakeApp(new SqliteStore({ path: path.join(dir, 'state.db') })),
};
const results = new Map<string, number[]>(Object.keys(cases).map((k) => [k, []]));

for (const c of Object.values(cases)) await rate(c.post, 300); // warm-up (JIT, caches)
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, c] of Object.entries(cases)) results.get(name)?.push(await rate(c.post, ROUND_MS));
}
for (const c of Object.values(cases)) await c.close();

const [baseName, ...others] = [...results.keys()] as [string, ...string[]];
const base = median(results.get(baseName) ?? []);
console.log(`acknowledging one Alertmanager notification (1 firing alert), ${ROUNDS} rounds of ${ROUND_MS} ms, median:`);
console.log(`  ${baseName}: ${base.toFixed(0)} notifications/s (1.00x)`);
for (const name of others) {
  const m = median(results.get(name) ?? []);
  console.log(`  ${name}: ${m.toFixed(0)} notifications/s (${(m / base).toFixed(2)}x of baseline)`);
}

/**
 * What one firing alert costs in memory while it fires: 20,000 new alerts (one per notification,
 * each its own fingerprint) through the daemon's app and its SQLite store, in this process, and
 * the heap's growth over them after a full GC, per alert. Not one of `npm run bench`'s figures
 * (it has no baseline to stand against); a measure for changes to what a signal holds.
 *
 *   node --expose-gc --import tsx bench/signal-memory.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../src/config/load.js';
import { startDaemon } from '../src/daemon.js';
import { FakeExecutor } from '../test/support/fake-executor.js';
import { ID_PLACEHOLDER, oneAlertTemplate } from './payloads.js';

const ALERTS = 20_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

const dir = mkdtempSync(path.join(tmpdir(), 'pulumiscale-signal-memory-'));
const config = parseConfig(
  `
server: { host: 127.0.0.1, port: 0 }
store: { path: ${JSON.stringify(path.join(dir, 'state.db'))} }
targets:
  web: { workDir: /srv/web, stack: prod, configKey: web:replicas, min: 1, max: 9, paused: true }
`,
  { file: 'signal-memory.yaml', baseDir: '/', env: {} },
);
const executor = new FakeExecutor();
executor.values.set('web', 1);
const daemon = await startDaemon(config, { executor, logger: pino({ level: 'warn' }) });
await daemon.engine.idle();

const template = oneAlertTemplate('web');
let sent = 0;
/** Posts `count` new alerts over 50 requests at a time, as the intake figure's connections do. */
async function post(count: number): Promise<void> {
  let left = count;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (left-- > 0) {
        const payload = template.replace(ID_PLACEHOLDER, (sent++).toString(16).padStart(16, '0'));
        const res = await daemon.app.inject({ method: 'POST', url: '/webhooks/alertmanager', headers: { 'content-type': 'application/json' }, payload });
        if (res.statusCode !== 202) throw new Error(`${res.statusCode}: ${res.body}`);
      }
    }),
  );
}

await post(2_000); // the code paths compiled, the maps past their first growth
gc();
const before = process.memoryUsage().heapUsed;
await post(ALERTS);
gc();
const after = process.memoryUsage().heapUsed;
console.log(`${ALERTS} firing alerts held: ${Math.round((after - before) / ALERTS)} bytes each (heap ${(after / 2 ** 20).toFixed(0)} MiB)`);
await daemon.drain();
rmSync(dir, { recursive: true, force: true });

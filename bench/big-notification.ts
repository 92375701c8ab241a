/**
 * One big notification: 5,000 firing alerts in one Alertmanager delivery, and how long the
 * server's event loop is unavailable while it is taken. Another connection polls `/healthz`
 * back to back (a ~2 ms pause between answers) from before the POST until after its reply; the
 * figure is the longest gap between two consecutive answers. The same is done against the bare
 * Fastify route, which only parses the body: the floor for a body of that size.
 *
 * 5,000 alerts with every field Alertmanager sends (status, labels, annotations, startsAt,
 * endsAt, generatorURL, a 16-hex fingerprint) do not fit in 1 MB even with short values, so the
 * bench daemons run with `server.bodyLimit: 2mb` (bench/context.ts). Goal (issue #9): < 100 ms.
 */
import { BODY_LIMIT, type BenchContext } from './context.js';
import { bigNotification, notification, firingAlert } from './payloads.js';
import { daemonConfig, sleep, startDaemon } from './processes.js';
import { fmt, type Row } from './report.js';
import { project } from './stacks.js';

const ALERTS = 5_000;
const QUIET_MS = 300;

interface Stall {
  longestGapMs: number;
  postMs: number;
  status: number;
  reply: string;
}

/** POSTs `body` to `url`'s webhook while polling its `/healthz`; returns the longest gap. */
async function stallWhilePosting(url: string, body: string): Promise<Stall> {
  const answers: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const res = await fetch(`${url}/healthz`);
      await res.arrayBuffer();
      answers.push(performance.now());
      await sleep(2);
    }
  })();
  await sleep(QUIET_MS);
  const t0 = performance.now();
  const res = await fetch(`${url}/webhooks/alertmanager`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const reply = await res.text();
  const t1 = performance.now();
  await sleep(QUIET_MS);
  polling = false;
  await poller;
  // Gaps between consecutive answers that overlap the POST (from its send to its reply).
  let longestGapMs = 0;
  for (let i = 1; i < answers.length; i++) {
    const [a, b] = [answers[i - 1] as number, answers[i] as number];
    if (b >= t0 && a <= t1) longestGapMs = Math.max(longestGapMs, b - a);
  }
  return { longestGapMs, postMs: t1 - t0, status: res.status, reply: reply.slice(0, 200) };
}

/** Figure 2: the event-loop stall of storing one 5,000-alert notification. */
export async function bigNotificationFigure(ctx: BenchContext): Promise<Row[]> {
  const proj = await project(ctx.sandbox, 'big', ['big'], { 'web:replicas': '1' });
  const dir = ctx.tempDir('big');
  const targets = [proj.target('web', 'big', { extra: 'paused: true' })];
  const daemon = await startDaemon(dir, (port) => daemonConfig({ port, dir, pulumi: ctx.pulumi, targets, bodyLimit: BODY_LIMIT }));
  const body = bigNotification('web', ALERTS, 1);
  ctx.log(`big notification: ${ALERTS} alerts, ${(body.length / 1024 / 1024).toFixed(2)} MiB`);

  // A small delivery first, so that neither server pays its first-request costs in the figure.
  const warm = notification('web', [firingAlert('web', 'warmup', 'w')]);
  for (const url of [ctx.baseline.url, daemon.url]) {
    await fetch(`${url}/webhooks/alertmanager`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: warm }).then((r) => r.arrayBuffer());
  }
  const base = await stallWhilePosting(ctx.baseline.url, body);
  const run = await stallWhilePosting(daemon.url, body);
  await daemon.stop();

  const describe = (s: Stall) => `${s.status} after ${fmt.ms(s.postMs)}, longest /healthz gap ${fmt.ms(s.longestGapMs)}: ${s.reply}`;
  ctx.note(`big notification (${ALERTS} alerts, ${fmt.int(body.length)} bytes, bodyLimit ${BODY_LIMIT}) baseline: ${describe(base)}`);
  ctx.note(`big notification daemon: ${describe(run)}`);
  const accepted = run.status === 202 && run.reply.startsWith(`{"accepted":${ALERTS},`);
  return [
    {
      figure: 'big notification: /healthz stall',
      daemon: run.longestGapMs,
      baseline: base.longestGapMs,
      format: fmt.ms,
      goal: '< 100 ms',
      pass: accepted && run.longestGapMs < 100,
    },
  ];
}

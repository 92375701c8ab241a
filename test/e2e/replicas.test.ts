/**
 * End to end, several replicas on one PostgreSQL (issue "Several replicas on PostgreSQL"): three
 * built daemons as child processes share a real PostgreSQL (Debian's server, started here in a
 * temp folder) and one file backend, with alerts posted round-robin to all three. What is
 * checked is what an operator would check: the leases in `GET /api/v1/cluster`, each stack's
 * `pulumi stack history` (a change applied once is one update), the shared history of events,
 * and the metrics; never log lines.
 *
 * Each scenario runs on a schema of its own (a store per schema) and stacks of its own.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScalingEvent, TargetState } from '../../src/types.js';
import { alive, descendants, killAll, startDaemonProcess, until, type DaemonProcess } from '../support/daemon.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { createPulumiSandbox, deployedStack, pulumiOk, type FixtureStack, type PulumiSandbox } from '../support/pulumi.js';
import { slowCli } from '../support/slow-cli.js';
import { fixture } from '../support/sns.js';

let sandbox: PulumiSandbox;
let server: PostgresServer;
let admin: pg.Pool;

beforeAll(async () => {
  [sandbox, server] = await Promise.all([createPulumiSandbox(), startPostgres()]);
  admin = new pg.Pool({ connectionString: server.url, max: 2 });
  // Its idle connections end with the server in the outage test; the pool opens new ones.
  admin.on('error', () => undefined);
}, 60_000);

afterAll(async () => {
  await admin?.end();
  await server?.remove();
  await sandbox?.cleanup();
});

/** Daemons started by a test, killed after it whatever happened. */
const started: DaemonProcess[] = [];
afterAll(async () => {
  for (const d of started) {
    if (d.proc.pid !== undefined) killAll([d.proc.pid, ...descendants(d.proc.pid)]);
  }
});

let schemas = 0;
/** A store URL on a fresh schema of the test database. */
async function freshStore(): Promise<string> {
  const name = `replicas_${++schemas}`;
  await admin.query(`CREATE SCHEMA ${name}`);
  return server.urlFor(name);
}

/** `count` deployed stacks of the `simple` project at 1, named `<prefix>01`…, a few at a time. */
async function stacks(prefix: string, count: number): Promise<FixtureStack[]> {
  const names = Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(2, '0')}`);
  const out: FixtureStack[] = [];
  for (let i = 0; i < names.length; i += 6) out.push(...(await Promise.all(names.slice(i, i + 6).map((n) => deployedStack(sandbox, n, 1)))));
  return out;
}

interface Cluster {
  self: string;
  replicas: { id: string; lastSeen: string; draining: boolean }[];
  leases: { stack: string; owner: string; epoch: number; expiresAt: string }[];
}

/** Starts replica `id` on `url` with one target per stack (named as the stack, 1 to 2). */
async function replica(id: string, url: string, targets: FixtureStack[], opts: { leaseTTL: string; cliDir?: string }): Promise<DaemonProcess> {
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    engine: { evaluationInterval: '1s', drainTimeout: '30s' },
    store: { driver: 'postgres', url, leaseTTL: opts.leaseTTL, replicaId: id },
    pulumi: { backendUrl: sandbox.backendUrl, cliDir: opts.cliDir ?? sandbox.cliDir, env: sandbox.pulumiEnv },
    log: { level: 'info' },
    targets: Object.fromEntries(targets.map((s) => [s.name, { workDir: s.dir, stack: s.name, configKey: 'web:replicas', min: 1, max: 2 }])),
  };
  // A folder per replica: each has a config file of its own.
  const dir = path.join(sandbox.root, `replica-${id}`);
  mkdirSync(dir, { recursive: true });
  const d = await startDaemonProcess(dir, JSON.stringify(config, null, 2), sandbox.env);
  started.push(d);
  return d;
}

async function cluster(d: DaemonProcess): Promise<Cluster> {
  const reply = await d.request<Cluster>('GET', '/api/v1/cluster');
  expect(reply.status).toBe(200);
  return reply.body;
}

/** How many leases each replica holds, by id. */
function holdings(c: Cluster): Map<string, number> {
  const count = new Map<string, number>();
  for (const l of c.leases) count.set(l.owner, (count.get(l.owner) ?? 0) + 1);
  return count;
}

/** Waits until `d`'s cluster view satisfies `check`; a timeout says the last view seen. */
async function clusterWhere(d: DaemonProcess, check: (c: Cluster) => boolean, what: string, timeoutMs = 60_000): Promise<Cluster> {
  let last: Cluster | undefined;
  try {
    return await until(
      async () => {
        last = await cluster(d);
        return check(last) ? last : undefined;
      },
      what,
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last view: ${JSON.stringify(last)}`, { cause: err });
  }
}

/** The stack key a lease names for a stack of the sandbox (backend, project and stack). */
function stackKey(s: FixtureStack): string {
  return `${sandbox.backendUrl}#web/${s.name}`;
}

const NOTIFICATION = fixture<{ alerts: (Record<string, unknown> & { labels: Record<string, string> })[] }>('alertmanager/notification-firing.json');

/** Posts one firing Alertmanager alert (up) for `target`. */
function fire(d: DaemonProcess, target: string) {
  const base = NOTIFICATION.alerts[0] as (typeof NOTIFICATION.alerts)[number];
  const alert = { ...base, labels: { ...base.labels, pulumiscale_target: target }, fingerprint: `fp-${target}` };
  return d.request<{ accepted: number }>('POST', '/webhooks/alertmanager', { ...NOTIFICATION, status: 'firing', alerts: [alert] });
}

/** The `update`s of a stack's history (its first deploy included). */
async function updates(s: FixtureStack): Promise<number> {
  const history = JSON.parse(await pulumiOk(sandbox, ['stack', 'history', '--json', '--stack', s.name], s.dir)) as { kind: string }[];
  return history.filter((h) => h.kind === 'update').length;
}

/** A target's `changed` events in the shared history. */
async function changes(d: DaemonProcess, target: string): Promise<ScalingEvent[]> {
  const reply = await d.request<ScalingEvent[]>('GET', `/api/v1/events?target=${target}&limit=1000`);
  return reply.body.filter((e) => e.kind === 'changed');
}

async function state(d: DaemonProcess, target: string): Promise<TargetState> {
  return (await d.request<TargetState>('GET', `/api/v1/targets/${target}`)).body;
}

/** A metric's value in `d`'s /metrics (the first sample matching `series`), or null. */
async function metric(d: DaemonProcess, series: string): Promise<number | null> {
  const text = (await d.request<string>('GET', '/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

/** The replica (of `ds`) whose id is `id`. */
function byId(ds: readonly DaemonProcess[], ids: readonly string[], id: string): DaemonProcess {
  const i = ids.indexOf(id);
  if (i < 0) throw new Error(`no replica ${id}`);
  return ds[i] as DaemonProcess;
}

/**
 * Three replicas with a 3 s TTL on three stacks, once each holds one: the first stack's lease
 * (its holder, that holder's epoch) and another replica.
 */
async function threeOnThree(mine: FixtureStack[], url: string, ids: string[], cliDir: string) {
  const ds = await Promise.all(ids.map((id) => replica(id, url, mine, { leaseTTL: '3s', cliDir })));
  const c = await clusterWhere(ds[0] as DaemonProcess, (v) => v.leases.length === 3 && holdings(v).size === 3, 'one lease per replica');
  const target = mine[0] as FixtureStack;
  const lease = c.leases.find((l) => l.stack === stackKey(target));
  const ownerId = lease?.owner as string;
  const owner = byId(ds, ids, ownerId);
  const other = ds.find((d) => d !== owner) as DaemonProcess;
  return { ds, target, ownerId, owner, other, epoch: lease?.epoch as number };
}

describe('three replicas on one PostgreSQL', () => {
  it('spread 30 stacks (at most 12 each), apply every alert posted round-robin exactly once, and hand leases over on SIGTERM', async () => {
    const all = await stacks('spread', 30);
    const url = await freshStore();
    const ids = ['r1', 'r2', 'r3'];
    // A long TTL, so that a hand-over at once is told apart from a lease lapsing.
    const ds = await Promise.all(ids.map((id) => replica(id, url, all, { leaseTTL: '20s' })));
    const [r1, r2, r3] = ds as [DaemonProcess, DaemonProcess, DaemonProcess];

    const spread = await clusterWhere(
      r1,
      (c) => c.leases.length === 30 && c.replicas.length === 3 && holdings(c).size === 3 && [...holdings(c).values()].every((n) => n <= 12),
      'the 30 leases to spread over the 3 replicas',
    );
    expect(new Set(spread.leases.map((l) => l.stack))).toEqual(new Set(all.map(stackKey)));
    // Every replica sees the same table, and its own state names the holder.
    expect((await cluster(r2)).leases.length).toBe(30);
    const owners = new Map(spread.leases.map((l) => [l.stack, l.owner]));
    // Each replica's own view of who holds what is as fresh as its last beat (a third of the TTL).
    const holder07 = owners.get(stackKey(all[6] as FixtureStack));
    await until(async () => ((await state(r3, 'spread07')).owner === holder07 ? true : undefined), "r3 to name spread07's holder", 20_000);

    for (const [i, s] of all.entries()) expect(await fire(ds[i % 3] as DaemonProcess, s.name)).toMatchObject({ status: 202, body: { accepted: 1 } });
    for (const s of all) {
      await until(async () => ((await changes(r1, s.name)).length > 0 ? true : undefined), `${s.name} to change`, 120_000);
    }
    for (const s of all) {
      expect(await changes(r2, s.name)).toHaveLength(1);
      expect(await updates(s)).toBe(2);
    }
    // Each replica counts only its own leases; together they hold every stack.
    const held = await Promise.all(ds.map((d) => metric(d, 'pulumiscale_leases_held')));
    expect(held.reduce((a, b) => (a ?? 0) + (b ?? 0), 0)).toBe(30);
    expect(await metric(r3, 'pulumiscale_replicas_live')).toBe(3);

    // Drain hands over: r1's leases go to the others well before its 20 s TTL could lapse.
    const before = holdings(await cluster(r2)).get('r1') ?? 0;
    expect(before).toBeGreaterThan(0);
    const stoppedAt = Date.now();
    expect(await r1.stop('SIGTERM')).toBe(0);
    const after = await clusterWhere(r2, (c) => c.leases.length === 30 && !holdings(c).has('r1'), "r1's leases to be taken by r2 and r3", 15_000);
    expect(Date.now() - stoppedAt).toBeLessThan(15_000);
    expect([...holdings(after).keys()].sort()).toEqual(['r2', 'r3']);
    expect(await r2.stop('SIGTERM')).toBe(0);
    expect(await r3.stop('SIGTERM')).toBe(0);
  }, 600_000);

  it('SIGKILL of the replica running an up: another finishes that stack within the TTL and a few seconds, applying it once', async () => {
    const mine = await stacks('kill', 3);
    const url = await freshStore();
    const ids = ['k1', 'k2', 'k3'];
    // Each `up` waits 4 s before it starts: a window to kill its replica in.
    const cliDir = await slowCli(sandbox, { commands: ['up'], seconds: 4 });
    const { ds, target, ownerId, owner, other } = await threeOnThree(mine, url, ids, cliDir);

    expect(await fire(other, target.name)).toMatchObject({ status: 202 });
    await until(async () => ((await state(owner, target.name)).running ? true : undefined), `${ownerId} to run the up`, 30_000);
    // As a pod is killed: the daemon and every process below it.
    const pid = owner.proc.pid as number;
    const tree = [pid, ...descendants(pid)];
    killAll(tree);
    await owner.exited;
    await until(async () => (tree.every((p) => !alive(p)) ? true : undefined), 'the killed processes to be gone', 10_000);
    const killedAt = Date.now();

    await until(async () => ((await changes(other, target.name)).length > 0 ? true : undefined), 'another replica to finish the change', 60_000);
    // TTL 3 s, then the resumed operation's own 4 s wait and its up; "a few seconds" more.
    expect(Date.now() - killedAt).toBeLessThan(3_000 + 4_000 + 12_000);
    const [event] = await changes(other, target.name);
    expect(event).toMatchObject({ from: 1, to: 2 });
    expect(await updates(target)).toBe(2);
    const now = await cluster(other);
    expect(now.leases.find((l) => l.stack === stackKey(target))?.owner).not.toBe(ownerId);
    for (const d of ds) if (d !== owner) expect(await d.stop('SIGTERM')).toBe(0);
  }, 300_000);

  it('SIGSTOP past the TTL: the stopped replica loses its stack, its late end of the operation is refused, and the change stays applied once', async () => {
    const mine = await stacks('stop', 3);
    const url = await freshStore();
    const ids = ['s1', 's2', 's3'];
    // The up runs at once, then its CLI lingers 10 s before it exits: the replica has applied
    // the change but not recorded it, the moment a pause hurts most.
    const cliDir = await slowCli(sandbox, { commands: ['up'], seconds: 10, after: true });
    const { ds, target, ownerId, owner, other, epoch } = await threeOnThree(mine, url, ids, cliDir);

    expect(await fire(other, target.name)).toMatchObject({ status: 202 });
    await until(async () => ((await updates(target)) === 2 ? true : undefined), 'the up to be applied', 60_000);
    owner.proc.kill('SIGSTOP');
    try {
      // Another replica takes the stack at a higher epoch and records the change from the stack.
      const taken = await clusterWhere(other, (v) => v.leases.some((l) => l.stack === stackKey(target) && l.owner !== ownerId), 'another replica to take the stack', 20_000);
      expect(taken.leases.find((l) => l.stack === stackKey(target))?.epoch).toBeGreaterThan(epoch);
      await until(async () => ((await changes(other, target.name)).length > 0 ? true : undefined), 'the change to be recorded by the new holder', 30_000);
    } finally {
      owner.proc.kill('SIGCONT');
    }
    // The resumed replica's operation ends (its CLI's 10 s are over) and its write is refused.
    await until(async () => ((await metric(owner, 'pulumiscale_lease_changes_total{reason="lost"}')) ?? 0) >= 1 ? true : undefined, `${ownerId} to step down`, 30_000);
    await until(async () => ((await state(owner, target.name)).running ? undefined : true), `${ownerId}'s operation to end`, 30_000);
    expect(await changes(other, target.name)).toHaveLength(1);
    expect(await updates(target)).toBe(2);
    const after = await cluster(owner);
    expect(after.leases.find((l) => l.stack === stackKey(target))?.owner).not.toBe(ownerId);
    for (const d of ds) expect(await d.stop('SIGTERM')).toBe(0);
  }, 300_000);

  it('PostgreSQL stopped for 10 s: intake answers 503, nothing acknowledged is lost, and work resumes by itself', async () => {
    const mine = await stacks('outage', 3);
    const url = await freshStore();
    const ids = ['o1', 'o2', 'o3'];
    const ds = await Promise.all(ids.map((id) => replica(id, url, mine, { leaseTTL: '3s' })));
    await clusterWhere(ds[0] as DaemonProcess, (v) => v.leases.length === 3, 'the leases to be taken');

    // One alert acknowledged just before the outage: its operation runs into it.
    const acknowledged = new Set<string>();
    const first = mine[0] as FixtureStack;
    expect(await fire(ds[0] as DaemonProcess, first.name)).toMatchObject({ status: 202 });
    acknowledged.add(first.name);
    await server.stop();
    const refused = new Set<string>();
    const outageEnds = Date.now() + 10_000;
    let i = 1;
    try {
      while (Date.now() < outageEnds) {
        const s = mine[1 + (i % 2)] as FixtureStack;
        const reply = await fire(ds[i % 3] as DaemonProcess, s.name);
        if (reply.status === 202) acknowledged.add(s.name);
        else {
          expect(reply.status).toBe(503);
          refused.add(s.name);
        }
        i += 1;
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await server.start();
    }
    expect(refused).toEqual(new Set([mine[1]?.name, mine[2]?.name]));
    expect(acknowledged).toEqual(new Set([first.name]));
    // The senders retry what was refused, as Alertmanager does.
    for (const [j, s] of mine.entries()) {
      if (acknowledged.has(s.name)) continue;
      await until(async () => ((await fire(ds[j % 3] as DaemonProcess, s.name)).status === 202 ? true : undefined), `${s.name}'s alert to be taken again`, 30_000);
    }
    await clusterWhere(ds[1] as DaemonProcess, (v) => v.leases.length === 3, 'the leases to be taken again', 30_000);
    for (const s of mine) {
      await until(async () => ((await changes(ds[2] as DaemonProcess, s.name)).length > 0 ? true : undefined), `${s.name} to change`, 60_000);
      expect(await changes(ds[0] as DaemonProcess, s.name)).toHaveLength(1);
      expect(await updates(s)).toBe(2);
    }
    for (const d of ds) expect(await d.stop('SIGTERM')).toBe(0);
  }, 300_000);
});

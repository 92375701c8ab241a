/**
 * End to end with a real Alertmanager (Debian's `prometheus-alertmanager`): alerts posted to its
 * API are grouped and routed to the daemon's webhook with a bearer token, and the target's
 * Pulumi stack changes. A resolved alert is delivered too and recorded as `ignored`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScalingEvent, TargetState } from '../../src/types.js';
import { startDaemonProcess, until, type DaemonProcess } from '../support/daemon.js';
import { configGet, createPulumiSandbox, stackOutputs, type PulumiSandbox } from '../support/pulumi.js';

const ALERTMANAGER = process.env.PULUMISCALE_ALERTMANAGER ?? '/usr/bin/prometheus-alertmanager';
const TOKEN = 'e2e-alertmanager-token';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

let sandbox: PulumiSandbox;
let webDir: string;
let daemon: DaemonProcess;
let am: ChildProcess;
let amUrl: string;

beforeAll(async () => {
  try {
    accessSync(ALERTMANAGER, constants.X_OK);
  } catch {
    throw new Error(`${ALERTMANAGER} not found: run bash scripts/setup-peers.sh (npm test does; it installs prometheus-alertmanager), or set PULUMISCALE_ALERTMANAGER`);
  }
  sandbox = await createPulumiSandbox();
  webDir = await sandbox.copyFixture('simple', 'web');
  daemon = await startDaemonProcess(
    sandbox.root,
    `
server: { host: 127.0.0.1, port: 0 }
store: { path: ./state.db }
pulumi:
  backendUrl: ${sandbox.backendUrl}
  cliDir: ${sandbox.cliDir}
  env: ${JSON.stringify(sandbox.pulumiEnv)}
webhooks:
  alertmanager: { bearerTokens: ["\${AM_TOKEN}"] }
targets:
  web:
    workDir: ${webDir}
    stack: dev
    configKey: web:replicas
    min: 2
    max: 10
    step: 2
    # Long enough that the firing alert steps once while the test looks (it would step again
    # after each cooldown for as long as it fires).
    cooldown: { up: 10m, down: 0s }
    createStack: true
`,
    { ...sandbox.env, AM_TOKEN: TOKEN },
  );

  const port = await freePort();
  amUrl = `http://127.0.0.1:${port}`;
  const amConfig = path.join(sandbox.root, 'alertmanager.yml');
  writeFileSync(
    amConfig,
    `
route:
  receiver: pulumiscale
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 4h
receivers:
  - name: pulumiscale
    webhook_configs:
      - url: ${daemon.url}/webhooks/alertmanager
        send_resolved: true
        http_config:
          authorization: { type: Bearer, credentials: ${TOKEN} }
`,
  );
  am = spawn(
    ALERTMANAGER,
    [
      `--config.file=${amConfig}`,
      `--storage.path=${path.join(sandbox.root, 'am-data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let amLog = '';
  am.stderr?.on('data', (b: Buffer) => (amLog += b.toString()));
  await until(
    async () => {
      if (am.exitCode !== null) throw new Error(`alertmanager exited ${am.exitCode}:\n${amLog}`);
      const ok = await fetch(`${amUrl}/-/ready`).then((r) => r.ok, () => false);
      return ok ? true : undefined;
    },
    'alertmanager to be ready',
    30_000,
  );
});

afterAll(async () => {
  am?.kill('SIGTERM');
  if (daemon) expect(await daemon.stop('SIGTERM')).toBe(0);
  await sandbox?.cleanup();
});

async function postAlert(alert: { labels: Record<string, string>; annotations?: Record<string, string>; endsAt?: string }) {
  const res = await fetch(`${amUrl}/api/v2/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([{ startsAt: new Date(Date.now() - 60_000).toISOString(), annotations: {}, ...alert }]),
  });
  expect(res.status).toBe(200);
}

async function webEvents(): Promise<ScalingEvent[]> {
  return (await daemon.request<ScalingEvent[]>('GET', '/api/v1/events?target=web')).body;
}

describe('a real Alertmanager routing to the daemon', () => {
  it('a firing alert labelled for the target scales its stack up by its step', async () => {
    await postAlert({ labels: { alertname: 'HighLoad', pulumiscale_target: 'web', severity: 'page' }, annotations: { pulumiscale_value: '93.5' } });
    const changed = await until(async () => (await webEvents()).find((e) => e.kind === 'changed'), 'a changed event');
    // The key starts unset, so the step applies from min: 2 + 2.
    expect(changed).toMatchObject({ source: 'alertmanager', to: 4, signals: [{ source: 'alertmanager', direction: 'up', value: 93.5 }] });
    const state = (await daemon.request<TargetState>('GET', '/api/v1/targets/web')).body;
    expect(state.current).toBe(4);
    expect(state.signals).toMatchObject([{ direction: 'up', value: 93.5 }]);
    expect(await configGet(sandbox, webDir, 'dev', 'web:replicas')).toBe('4');
    expect((await stackOutputs(sandbox, 'dev', webDir)).replicas).toBe(4);
  });

  it('a resolved alert ends its signal, starts nothing, and is recorded as ignored', async () => {
    await postAlert({ labels: { alertname: 'HighLoad', pulumiscale_target: 'web', severity: 'page' }, endsAt: new Date(Date.now() - 1000).toISOString() });
    const ignored = await until(async () => (await webEvents()).find((e) => e.kind === 'ignored'), 'an ignored event');
    expect(ignored).toMatchObject({ source: 'alertmanager', intents: 0 });
    expect((await daemon.request<TargetState>('GET', '/api/v1/targets/web')).body.signals).toEqual([]);
    expect(await configGet(sandbox, webDir, 'dev', 'web:replicas')).toBe('4');
  });
});

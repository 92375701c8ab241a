/**
 * `pulumiscale status --url URL [--token T]`: the terminal view of a running daemon, the same
 * targets the status page shows, and the live stream of that daemon read with a plain client.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, settledAt, startDaemonProcess, type DaemonProcess } from '../support/daemon.js';
import { createPulumiSandbox, deployedStack, type PulumiSandbox } from '../support/pulumi.js';

const TOKEN = 'status-token';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (err, stdout, stderr) => resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr }));
  });
}

let sandbox: PulumiSandbox;
let d: DaemonProcess;
beforeAll(async () => {
  sandbox = await createPulumiSandbox();
  const stack = await deployedStack(sandbox, 'status', 3);
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    api: { bearerTokens: [TOKEN] },
    store: { path: './status.db' },
    pulumi: { backendUrl: sandbox.backendUrl, cliDir: sandbox.cliDir, env: sandbox.pulumiEnv },
    targets: { web: { workDir: stack.dir, stack: stack.name, configKey: 'web:replicas', min: 1, max: 10 } },
  };
  d = await startDaemonProcess(sandbox.root, JSON.stringify(config), sandbox.env);
});
afterAll(async () => {
  if (d !== undefined) expect(await d.stop('SIGTERM')).toBe(0);
  await sandbox?.cleanup();
});

describe('pulumiscale status', () => {
  it('prints each target with its value and bounds', async () => {
    const headers = { authorization: `Bearer ${TOKEN}` };
    await settledAt({ ...d, request: (m, r, b, h) => d.request(m, r, b, { ...headers, ...h }) }, 3);
    const r = await run(['status', '--url', d.url, '--token', TOKEN]);
    expect(r.code).toBe(0);
    const [head, row] = r.stdout.trim().split('\n');
    expect(head).toMatch(/^target\s+value\s+desired\s+bounds\s+alerts\s+work\s+held\s+next schedule$/);
    expect(row).toMatch(/^web\s+3\s+\S+\s+\[1, 10\]\s+0/);
  });

  it('without the token says so and exits 1', async () => {
    const r = await run(['status', '--url', d.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('401');
    expect(r.stderr).toContain('--token');
  });

  it('without --url is a usage error', async () => {
    expect((await run(['status'])).code).toBe(2);
  });
});

describe('a drain with open connections', () => {
  it('SIGTERM exits promptly with a stream open, a keep-alive socket idle and a client stalled mid-request', async () => {
    const { request, Agent } = await import('node:http');
    const stack = await deployedStack(sandbox, 'drain-stream', 2);
    const config = {
      server: { host: '127.0.0.1', port: 0 },
      api: { bearerTokens: [TOKEN] },
      store: { path: './drain-stream.db' },
      pulumi: { backendUrl: sandbox.backendUrl, cliDir: sandbox.cliDir, env: sandbox.pulumiEnv },
      targets: { web: { workDir: stack.dir, stack: stack.name, configKey: 'web:replicas', min: 1, max: 10 } },
    };
    const daemon = await startDaemonProcess(sandbox.root, JSON.stringify(config), sandbox.env);
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const get = (path: string, onResponse: (res: import('node:http').IncomingMessage) => void) =>
      request(`${daemon.url}${path}`, { agent, headers: { authorization: `Bearer ${TOKEN}` } }, onResponse).end();
    // A stream that stays open, as the status page holds one.
    const streaming = new Promise<void>((resolve) => get('/api/v1/stream', (res) => res.once('data', () => resolve())));
    await streaming;
    // A finished request whose socket the agent keeps, as a browser pools one.
    await new Promise<void>((resolve) => get('/api/v1/targets', (res) => res.resume().on('end', () => resolve())));
    // And a client that sent half a request and went quiet: its connection counts as busy.
    const { connect } = await import('node:net');
    const { port } = new URL(daemon.url);
    const stalled = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
    stalled.write(`GET /api/v1/targets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n`);
    stalled.on('error', () => undefined);
    const started = Date.now();
    expect(await daemon.stop('SIGTERM')).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    agent.destroy();
    stalled.destroy();
  });
});

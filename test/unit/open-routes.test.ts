/**
 * Open by default no more: which routes take no credentials, and the warning the daemon logs
 * for each of them when it listens on an address other machines can reach.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { startDaemon, type Daemon } from '../../src/daemon.js';
import { isLoopback, openRoutes } from '../../src/http/auth.js';
import { FakeExecutor } from '../support/fake-executor.js';

function config(extra: string, host = '127.0.0.1') {
  return parseConfig(
    `
server: { host: "${host}", port: 0 }
store: { path: ":memory:" }
${extra}
targets:
  web: { workDir: /srv/web, stack: prod, configKey: web:replicas, min: 1, max: 9 }
`,
    { file: 'open-routes.yaml', baseDir: '/', env: {} },
  );
}

describe('openRoutes', () => {
  it.each([
    { rule: 'with no credentials anywhere, all three routes are open', extra: 'webhooks: { cloudwatch: { verifySignature: false } }', open: ['/api/v1/*', '/webhooks/alertmanager', '/webhooks/cloudwatch'] },
    { rule: 'a verified SNS signature protects the CloudWatch route', extra: '', open: ['/api/v1/*', '/webhooks/alertmanager'] },
    { rule: 'CloudWatch basic credentials protect it without signatures', extra: 'webhooks: { cloudwatch: { verifySignature: false, basicAuth: [{ username: sns, password: pw }] } }', open: ['/api/v1/*', '/webhooks/alertmanager'] },
    { rule: 'API tokens protect the API', extra: 'api: { bearerTokens: [t] }', open: ['/webhooks/alertmanager'] },
    { rule: 'Alertmanager basic credentials protect its webhook', extra: 'api: { bearerTokens: [t] }\nwebhooks: { alertmanager: { basicAuth: [{ username: am, password: pw }] } }', open: [] },
  ])('$rule', ({ extra, open }) => {
    expect(openRoutes(config(extra)).map((r) => r.route)).toEqual(open);
  });
});

describe('isLoopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.5', false],
    ['127.0.0.1.example.com', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopback(host)).toBe(loopback);
  });
});

describe('the daemon at start', () => {
  let daemon: Daemon | undefined;
  afterEach(async () => {
    await daemon?.drain();
    daemon = undefined;
  });

  async function warnings(host: string): Promise<unknown[]> {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    daemon = await startDaemon(config('', host), { executor: new FakeExecutor(), logger });
    return lines.filter((l) => l.level === 40 && typeof l.route === 'string').map((l) => l.route);
  }

  it('warns once for every open route when it listens beyond localhost', async () => {
    expect(await warnings('0.0.0.0')).toEqual(['/api/v1/*', '/webhooks/alertmanager']);
  });

  it('says nothing on localhost, where open routes are the demo default', async () => {
    expect(await warnings('127.0.0.1')).toEqual([]);
  });

  it('listens on localhost when the config names no host', () => {
    const c = parseConfig('targets: {}\n', { file: 'x.yaml', baseDir: '/', env: {} });
    expect(c.server.host).toBe('127.0.0.1');
  });
});

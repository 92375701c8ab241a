import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/config/duration.js';
import { ConfigError, loadConfig, parseConfig, type ConfigProblem } from '../../src/config/load.js';
import { webTargetConfig } from '../support/config.js';

const BASE = webTargetConfig('');

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): ConfigProblem[] {
  try {
    parseConfig(text, { file: 'test.yaml', baseDir: '/etc/pulumiscale', env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('config', () => {
  it('fills every default and resolves relative paths against the config folder', () => {
    const c = parseConfig(BASE, { file: 'x.yaml', baseDir: '/etc/pulumiscale', env: {} });
    expect(c.server).toEqual({ host: '127.0.0.1', port: 8080, bodyLimit: 1024 * 1024 });
    expect(c.engine).toMatchObject({ concurrency: 2, dryRun: false, drainTimeout: 15 * 60_000 });
    expect(c.store).toMatchObject({ driver: 'sqlite', path: '/etc/pulumiscale/.pulumiscale/state.db' });
    expect(c.webhooks.cloudwatch.verifySignature).toBe(true);
    expect(c.targets.web).toMatchObject({
      workDir: '/etc/pulumiscale/infra/web',
      step: 1,
      cooldown: { up: 60_000, down: 300_000 },
      defaultAction: 'up',
      paused: false,
    });
  });

  it('is frozen after load', () => {
    const c = parseConfig(BASE, { file: 'x.yaml', baseDir: '/', env: {} });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.targets.web)).toBe(true);
    expect(() => {
      (c.targets.web as { max: number }).max = 1;
    }).toThrow(TypeError);
  });

  it('interpolates ${ENV} in values, with defaults and the $${ escape', () => {
    const c = parseConfig(
      `${BASE}api: { bearerTokens: ["\${API_TOKEN}", "\${OTHER:-fallback}", "lit$\${x}"] }\n`,
      { file: 'x.yaml', baseDir: '/', env: { API_TOKEN: 's3cret' } },
    );
    expect(c.api.bearerTokens).toEqual(['s3cret', 'fallback', 'lit${x}']);
  });

  it.each<[string, string, NodeJS.ProcessEnv, ConfigProblem[]]>([
    ['max below min', BASE.replace('max: 40', 'max: 1'), {}, [{ path: 'targets.web.max', message: 'must be >= min' }]],
    ['an unset environment variable, once', `${BASE}api: { bearerTokens: ["\${NOPE}"] }`, {}, [
      { path: 'api.bearerTokens.0', message: 'environment variable NOPE is not set' },
    ]],
    ['a variable set to nothing', `${BASE}api: { bearerTokens: ["\${EMPTY}"] }`, { EMPTY: '' }, [
      { path: 'api.bearerTokens.0', message: 'environment variable EMPTY is set but empty' },
    ]],
    ['an empty token', `${BASE}api: { bearerTokens: [""] }`, {}, [
      { path: 'api.bearerTokens.0', message: 'must not be empty (is its environment variable set?)' },
    ]],
    ['a duration without a unit', BASE.replace('max: 40', 'max: 40\n    cooldown: { up: "60" }'), {}, [
      { path: 'targets.web.cooldown.up', message: 'not a duration: "60" (use a unit, e.g. 500ms, 60s, 5m, 1h)' },
    ]],
    ['a signal TTL past any date (it threw at the first alert)', `webhooks: { alertmanager: { signalTTL: 100000000d } }\n${BASE}`, {}, [
      { path: 'webhooks.alertmanager.signalTTL', message: 'too long: "100000000d" (at most 36500d, 100 years)' },
    ]],
    ['a cooldown of one day over 100 years', BASE.replace('max: 40', 'max: 40\n    cooldown: { down: 36501d }'), {}, [
      { path: 'targets.web.cooldown.down', message: 'too long: "36501d" (at most 36500d, 100 years)' },
    ]],
    ['nothing wrong with a cooldown of 100 years', BASE.replace('max: 40', 'max: 40\n    cooldown: { down: 36500d }'), {}, []],
    // Node.js fires a timer past 2^31-1 ms at once: the CLI was killed right after its SIGINT.
    ['a cancel grace longer than a timer takes', `engine: { cancelGrace: 25d }\n${BASE}`, {}, [
      { path: 'engine.cancelGrace', message: 'must be at most 24d (a longer timer would fire at once)' },
    ]],
    ['nothing wrong with a cancel grace of 24 days', `engine: { cancelGrace: 24d }\n${BASE}`, {}, []],
    ['an evaluation interval of 0s (a timer re-armed back to back)', `engine: { evaluationInterval: 0s }\n${BASE}`, {}, [
      { path: 'engine.evaluationInterval', message: 'must be at least 100ms' },
    ]],
    ['an operation timeout under a second', `engine: { operationTimeout: 500ms }\n${BASE}`, {}, [
      { path: 'engine.operationTimeout', message: 'must be at least 1s' },
    ]],
    ['both workDir and inline', BASE.replace('stack: prod', 'stack: prod\n    inline: { project: p }'), {}, [
      { path: 'targets.web.workDir', message: 'set exactly one of workDir or inline' },
    ]],
    ['a config key without namespace', BASE.replace('web:replicas', 'replicas'), {}, [
      { path: 'targets.web.configKey', message: 'must be namespace:key, e.g. web:replicas' },
    ]],
  ])('reports %s with its path', (_name, text, env, expected) => {
    expect(problemsOf(text, env)).toEqual(expected);
  });

  it('reports every problem at once, not just the first', () => {
    const text = `
server: { port: 99999 }
engine: { concurrency: 0 }
bogus: 1
targets:
  web: { stack: prod, configKey: web:replicas, min: 5, max: 2 }
  "bad name!": { workDir: x, stack: s, configKey: a:b, min: 1, max: 2 }
`;
    const paths = problemsOf(text).map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['server.port', 'engine.concurrency', '', 'targets.web.max', 'targets.web.workDir', 'targets.bad name!']),
    );
    expect(paths.length).toBeGreaterThanOrEqual(6);
  });

  it('refuses two targets owning the same key of the same stack', () => {
    const text = `${BASE}  web2:\n    workDir: ./infra/web\n    stack: prod\n    configKey: web:replicas\n    min: 1\n    max: 2\n`;
    expect(problemsOf(text)).toEqual([{ path: 'targets.web2.configKey', message: 'already owned by target web' }]);
  });

  it('refuses two inline targets on the same project and stack', () => {
    const inline = (name: string, key: string) =>
      `  ${name}:\n    inline: { project: settings }\n    stack: prod\n    configKey: ${key}\n    min: 1\n    max: 2\n`;
    const text = `targets:\n${inline('a', 'settings:x')}${inline('b', 'settings:y')}`;
    expect(problemsOf(text)).toEqual([
      { path: 'targets.b.inline', message: 'project and stack already used by inline target a' },
    ]);
  });

  it('reports YAML syntax errors and unreadable files as problems', () => {
    expect(problemsOf('targets: [unclosed')[0]?.message).toMatch(/^YAML: /);
    expect(() => loadConfig('/nonexistent/pulumiscale.yaml')).toThrow(ConfigError);
  });

  it('the embedded default listens on localhost unless PULUMISCALE_HOST says otherwise (the image sets it)', () => {
    const file = new URL('../../config/pulumiscale.yaml', import.meta.url).pathname;
    expect(loadConfig(file, {}).server.host).toBe('127.0.0.1');
    expect(loadConfig(file, { PULUMISCALE_HOST: '0.0.0.0' }).server.host).toBe('0.0.0.0');
    expect(Object.keys(loadConfig(file, {}).targets)).toEqual(['demo']);
  });

  it('loads from a file, anchoring a file:// backend at the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ps-config-'));
    const file = path.join(dir, 'c.yaml');
    writeFileSync(file, `pulumi: { backendUrl: "file://./state" }\n${BASE}`);
    expect(loadConfig(file, {}).pulumi.backendUrl).toBe(`file://${path.join(dir, 'state')}`);
  });
});

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['60s', 60_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    ['60', null],
    ['', null],
    ['5 m', null],
    ['-5s', null],
  ])('%j is %j ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});

/** Config test helpers: a `web` target to extend, and parsing that returns the problems found. */
import { ConfigError, parseConfig, type ConfigProblem } from '../../src/config/load.js';

/** A config with one `web` target; `extra` is YAML indented as the target's own keys. */
export function webTargetConfig(extra: string): string {
  return `
targets:
  web:
    workDir: ./infra/web
    stack: prod
    configKey: web:replicas
    min: 2
    max: 40
${extra}`;
}

/** Parses config text as a file in /etc/pulumiscale would be, with no environment. */
export function parseTestConfig(text: string) {
  return parseConfig(text, { file: 'test.yaml', baseDir: '/etc/pulumiscale', env: {} });
}

/** Every problem the config text has, or none. */
export function problemsOf(text: string): ConfigProblem[] {
  try {
    parseTestConfig(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

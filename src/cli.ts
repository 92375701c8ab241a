#!/usr/bin/env node
/**
 * The `pulumiscale` command: `serve` runs the daemon, `validate` checks a config and prints
 * every problem with its path. Exit codes: 0 fine, 1 a bad config or a failed start, 2 usage.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, formatProblem, loadConfig } from './config/load.js';
import { startDaemon } from './daemon.js';
import { createLogger } from './observe/logger.js';

const DEFAULT_CONFIG = 'config/pulumiscale.yaml';

const USAGE = `Usage: pulumiscale <command> [--config FILE]

Commands:
  serve      run the daemon (default config: ${DEFAULT_CONFIG})
  validate   check a config; print every problem with its path; exit 1 on any

Options:
  -c, --config FILE   the YAML config file
  -h, --help          this help
  -v, --version       the version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function serve(file: string): Promise<number> {
  const config = loadConfig(file);
  const logger = createLogger(config.log.level);
  const daemon = await startDaemon(config, { logger });
  let finished = true;
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (daemon.engine.isDraining()) {
        logger.warn({ signal }, 'already draining; running Pulumi operations are never interrupted');
        return;
      }
      logger.info({ signal }, 'signal received');
      daemon.drain().then(
        (result) => {
          finished = result.finished;
          resolve();
        },
        (err: unknown) => {
          logger.error({ err }, 'drain failed');
          resolve();
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  // 0 after a clean drain; 1 when the drain timeout cut running operations off.
  return finished ? 0 : 1;
}

function validate(file: string): number {
  const config = loadConfig(file);
  const n = Object.keys(config.targets).length;
  process.stdout.write(`${file}: OK (${n} target${n === 1 ? '' : 's'}: ${Object.keys(config.targets).join(', ')})\n`);
  // Not a problem, since a config is often checked away from the machine that runs it; but
  // worth saying, as every operation of that target would fail here.
  for (const [name, t] of Object.entries(config.targets)) {
    if (t.workDir !== undefined && !existsSync(t.workDir)) {
      process.stdout.write(`warning: targets.${name}.workDir: ${t.workDir} does not exist on this machine\n`);
    }
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (positionals.length > 1) {
    process.stderr.write(`unexpected argument: ${positionals[1]}\n\n${USAGE}`);
    return 2;
  }
  const file = values.config ?? DEFAULT_CONFIG;
  try {
    if (command === 'serve') return await serve(file);
    if (command === 'validate') return validate(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${file}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}\n`);
      for (const p of err.problems) process.stderr.write(`  ${formatProblem(p)}\n`);
      return 1;
    }
    process.stderr.write(`pulumiscale ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  process.stderr.write(`unknown command: ${command}\n\n${USAGE}`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));

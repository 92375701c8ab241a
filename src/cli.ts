#!/usr/bin/env node
/**
 * The `pulumiscale` command: `serve` runs the daemon, `validate` checks a config and prints
 * every problem with its path. Exit codes: 0 fine, 1 a bad config or a failed start, 2 usage.
 */
// First: the Pulumi SDK, loaded by the imports below, must find the TypeScript stand-in.
import './pulumi/defer-typescript.js';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, formatProblem, loadConfig, targetsOf } from './config/load.js';
import { startDaemon } from './daemon.js';
import { PulumiScaleError } from './errors.js';
import { createLogger } from './observe/logger.js';
import { AutomationExecutor } from './pulumi/automation.js';
import { statusTable } from './observe/status-table.js';
import { ScenarioError, simulateCommand, UsageError } from './simulate/command.js';
import type { TargetState } from './types.js';

const DEFAULT_CONFIG = 'config/pulumiscale.yaml';

const USAGE = `Usage: pulumiscale <command> [--config FILE]

Commands:
  serve      run the daemon (default config: ${DEFAULT_CONFIG})
  validate   check a config; print every problem with its path; exit 1 on any
  status     print every target of a running daemon: --url URL [--token T]
  simulate   run a target's policy on a virtual clock, no Pulumi involved:
               --target NAME (--input FILE | --series FILE --above X [--below Y] [--start N]
               | --from-history SINCE [--url URL [--token T]]) [--op-seconds N] [--json]

Options:
  -c, --config FILE   the YAML config file
      --host HOST     serve: listen on HOST instead of server.host (the image passes 0.0.0.0)
  -h, --help          this help
  -v, --version       the version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function serve(file: string, host: string | undefined): Promise<number> {
  const loaded = loadConfig(file);
  const config = host === undefined ? loaded : Object.freeze({ ...loaded, server: Object.freeze({ ...loaded.server, host }) });
  const logger = createLogger(config.log.level);
  const daemon = await startDaemon(config, { logger });
  let finished = true;
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (daemon.engine.isDraining()) {
        // The operator asked twice: stop now. The CLIs get SIGINT and cancel on their own; the
        // running intents are still in the store and resume at the next start.
        daemon.abort();
        process.exit(1);
      }
      logger.info({ signal }, 'signal received');
      daemon.drain().then(
        (result) => {
          finished = result.finished;
          resolve();
        },
        (err: unknown) => {
          logger.error({ err }, 'drain failed');
          finished = false;
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

async function validate(file: string): Promise<number> {
  const config = loadConfig(file);
  const n = Object.keys(config.targets).length;
  // Not problems, since a config is often checked away from the machine that runs it; but worth
  // saying, as every operation of that target would fail here.
  const warnings: string[] = [];
  const problems: string[] = [];
  const executor = new AutomationExecutor({ pulumi: config.pulumi, logger: createLogger('silent') });
  try {
    for (const t of targetsOf(config)) {
      if (t.workDir !== undefined && !existsSync(t.workDir)) {
        warnings.push(`targets.${t.name}.workDir: ${t.workDir} does not exist on this machine`);
        continue;
      }
      // A stack the daemon may create needs no check, and checking could create it.
      if (t.createStack) continue;
      try {
        await executor.check(t);
      } catch (err) {
        if (err instanceof PulumiScaleError && err.code === 'PS_STACK_NOT_FOUND') {
          problems.push(`targets.${t.name}.stack: stack ${t.stack} does not exist (PS_STACK_NOT_FOUND); PulumiScale never creates it unless createStack: true`);
        } else {
          warnings.push(`targets.${t.name}.stack: could not check that stack ${t.stack} exists: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
        }
      }
    }
  } finally {
    await executor.close();
  }
  if (problems.length > 0) {
    process.stderr.write(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n`);
    for (const p of problems) process.stderr.write(`  ${p}\n`);
  } else {
    process.stdout.write(`${file}: OK (${n} target${n === 1 ? '' : 's'}: ${Object.keys(config.targets).join(', ')})\n`);
  }
  for (const w of warnings) process.stdout.write(`warning: ${w}\n`);
  return problems.length > 0 ? 1 : 0;
}

/** `pulumiscale status`: the targets of a running daemon as a table (what the status page shows). */
async function status(url: string | undefined, token: string | undefined): Promise<number> {
  if (url === undefined) {
    process.stderr.write(`pulumiscale status: --url URL is needed (the daemon's address, e.g. http://127.0.0.1:8080)\n\n${USAGE}`);
    return 2;
  }
  const res = await fetch(`${url.replace(/\/$/, '')}/api/v1/targets`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    const why = body?.error ? `${body.error.code ?? ''}: ${body.error.message ?? ''}` : res.statusText;
    process.stderr.write(`pulumiscale status: ${url} answered ${res.status} (${why})${res.status === 401 ? '; give --token' : ''}\n`);
    return 1;
  }
  process.stdout.write(statusTable((await res.json()) as TargetState[], Date.now()));
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
        host: { type: 'string' },
        target: { type: 'string' },
        input: { type: 'string' },
        series: { type: 'string' },
        above: { type: 'string' },
        below: { type: 'string' },
        start: { type: 'string' },
        'op-seconds': { type: 'string' },
        'from-history': { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean' },
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
    if (command === 'serve') return await serve(file, values.host);
    if (command === 'validate') return await validate(file);
    if (command === 'status') return await status(values.url, values.token);
    if (command === 'simulate') {
      const args = {
        config: file,
        target: values.target,
        input: values.input,
        series: values.series,
        above: values.above,
        below: values.below,
        start: values.start,
        opSeconds: values['op-seconds'],
        fromHistory: values['from-history'],
        url: values.url,
        token: values.token,
        json: values.json ?? false,
      };
      return await simulateCommand(args, (text) => process.stdout.write(text));
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`pulumiscale simulate: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof ScenarioError) {
      process.stderr.write(`pulumiscale simulate: the input has ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}\n`);
      for (const p of err.problems) process.stderr.write(`  ${p.path ? `${p.path}: ` : ''}${p.message}\n`);
      return 1;
    }
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

const code = await main(process.argv.slice(2));
// After `serve`, exit even if something still holds the event loop (a CLI child that would
// not die): a drain past its timeout must end the process, not hang it.
if (process.argv[2] === 'serve') process.exit(code);
process.exitCode = code;

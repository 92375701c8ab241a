/**
 * The Executor on the Pulumi Automation API: every target gets one LocalWorkspace and one
 * selected Stack, created at first use and reused, so an operation costs only its own CLI
 * calls. (Stack methods pass `--stack` on every command in this SDK version, so nothing needs
 * re-selecting per operation.) The engine runs one operation per target at a time; the only
 * race left here is two first calls for the same target, which share one memoized promise.
 *
 * Atomic config (DESIGN.md): `apply` snapshots the target's keys, sets them all in one
 * `config set-all`, runs `up` or `preview`, and puts the snapshot back when `up` fails and
 * after every preview, before it settles.
 *
 * An inline target's workspace is a temporary folder, so its stack config (which the file
 * backend keeps beside the project, not in the state) starts empty after every restart; the
 * values are recovered from the stack's outputs, which the inline program exports for exactly
 * that reason and which live in the backend.
 */
import { mkdir, mkdtemp, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ConcurrentUpdateError, PulumiCommand, type ConfigMap, type OpMap, type PulumiFn, type Stack } from '@pulumi/pulumi/automation/index.js';
import type { Logger } from 'pino';
import type { Config, TargetConfig } from '../config/schema.js';
import { PulumiCliMissingError, StackConfigError } from '../errors.js';
import { CliGuard } from './cli-guard.js';
import type { CliMatch } from './cli-process.js';
import { cliMissing } from './error-mapping.js';
import type { ApplyOptions, ApplyResult, Executor } from './executor.js';
import { inlineProgram, outputNameOf } from './inline.js';
import { writePreviewConfig } from './preview-config.js';
import {
  FOLLOW_UP_TIMEOUT_MS,
  call,
  configKeysOf,
  countsOf,
  describe,
  findOnPath,
  isExecutable,
  openStack,
  parseValue,
  settingsDir,
  settle,
  succeededSince,
  toNumber,
} from './stack-helpers.js';
import type { IsRunning } from './stale-lock.js';
import { previewRefresh, refreshStack, type DriftReport } from './refresh.js';
import { runsDirectly, upWithConfig } from './up-command.js';

/** What the executor needs to run. */
export interface AutomationExecutorOptions {
  /** The `pulumi` section of the config: backend, CLI folder and shared environment. */
  pulumi: Config['pulumi'];
  /** Where operations are logged (a child logger is derived from it). */
  logger: Logger;
  /**
   * Builds the program of an inline target. Defaults to {@link inlineProgram}; tests pass one
   * that blocks or fails to exercise locks and rollbacks.
   */
  inlineProgram?: (target: TargetConfig, configKeys: readonly string[]) => PulumiFn;
  /** How long a cancelled CLI gets after SIGINT before SIGKILL (`engine.cancelGrace`); default 10 s. */
  cancelGraceMs?: number;
  /** Whether a lock's process still runs (tests stand in for /proc); see stale-lock.ts. */
  isRunning?: IsRunning;
}

/** A target's opened stack, cached for the executor's lifetime. */
interface OpenStack {
  stack: Stack;
  /** The config keys the target owns, set and restored together. */
  keys: readonly string[];
  /** A temporary workspace folder this executor created and removes on close. */
  ownedDir?: string;
  /** How its CLI processes are recognised, to kill one that ignores a cancel. */
  cli: CliMatch;
}

/** The Automation API implementation of {@link Executor}. */
export class AutomationExecutor implements Executor {
  readonly #pulumi: Config['pulumi'];
  readonly #log: Logger;
  readonly #program: (target: TargetConfig, configKeys: readonly string[]) => PulumiFn;
  readonly #guard: CliGuard;
  /** Keyed by target name; a promise so that concurrent first calls share one creation. */
  readonly #stacks = new Map<string, Promise<OpenStack>>();
  /** Operations in flight, so `close` can let them finish before removing their folders. */
  readonly #running = new Set<Promise<unknown>>();
  #command: Promise<PulumiCommand> | undefined;
  /** The config each target's last `read` saw, for an `apply` with `readJustBefore`; taken by the next apply or revert. */
  readonly #seen = new Map<string, ConfigMap>();
  /** A folder whose `bin` links to `cliDir`, when `cliDir` is not itself named `bin`. */
  #shimDir: string | undefined;
  /** A folder whose `bin/pulumi` runs the CLI through `nice` (pulumi.nice). */
  #niceDir: string | undefined;

  constructor(opts: AutomationExecutorOptions) {
    this.#pulumi = opts.pulumi;
    this.#log = opts.logger.child({ component: 'pulumi' });
    this.#program = opts.inlineProgram ?? ((_target, keys) => inlineProgram(keys));
    this.#guard = new CliGuard({
      logger: this.#log,
      cancelGraceMs: opts.cancelGraceMs ?? 10_000,
      ...(opts.isRunning ? { isRunning: opts.isRunning } : {}),
    });
  }

  /** Reads the target's key; null when the stack has no value for it. */
  async read(target: TargetConfig, opts: { signal?: AbortSignal } = {}): Promise<number | null> {
    return this.#track(this.#read(target, opts.signal));
  }

  /** Reads several targets of one stack and folder with one config read, through the first one's workspace. */
  async readMany(targets: readonly TargetConfig[], opts: { signal?: AbortSignal } = {}): Promise<Map<string, number | null | Error>> {
    const values = new Map<string, number | null | Error>();
    const first = targets[0];
    if (first === undefined) return values;
    try {
      const config = await this.#track(
        (async () => {
          const { stack, cli } = await this.#open(first);
          return call(`reading the config of ${describe(first)}`, () => this.#guard.cancellable(cli, opts.signal, () => stack.getAllConfig()));
        })(),
      );
      for (const t of targets) {
        const entry = config[t.configKey];
        try {
          values.set(t.name, entry === undefined ? null : parseValue(t, t.configKey, entry));
        } catch (err) {
          values.set(t.name, err instanceof Error ? err : new Error(String(err)));
        }
      }
    } catch (err) {
      for (const t of targets) values.set(t.name, err instanceof Error ? err : new Error(String(err)));
    }
    return values;
  }

  /** Sets the target's keys to `to` and runs `up` (restoring on failure), or previews a copy. */
  async apply(target: TargetConfig, to: number, opts: ApplyOptions): Promise<ApplyResult> {
    return this.#track(this.#apply(target, to, opts));
  }

  /** Puts `value` back in the target's keys (removes them for null); runs no operation. */
  async revert(target: TargetConfig, value: number | null, values?: Readonly<Record<string, number>>): Promise<void> {
    this.#seen.delete(target.name);
    return this.#track(
      (async () => {
        const { stack, keys } = await this.#open(target);
        await call(`reverting ${keys.join(', ')} of ${describe(target)}`, async () => {
          if (value === null) return stack.removeAllConfig([...keys]);
          const config = await stack.getAllConfig();
          const valueOf = (key: string): string => String(key === target.configKey ? value : (values?.[key] ?? value));
          return stack.setAllConfig(Object.fromEntries(keys.map((key) => [key, { value: valueOf(key), secret: config[key]?.secret ?? false }])));
        });
      })(),
    );
  }

  /** The target's value in the stack's latest update, when that update succeeded; else null. */
  async deployedValue(target: TargetConfig): Promise<number | null> {
    return this.#track(
      (async () => {
        const { stack, cli } = await this.#open(target);
        const latest = await this.#guard
          .cancellable(cli, AbortSignal.timeout(FOLLOW_UP_TIMEOUT_MS), () => stack.info(true))
          .catch(() => undefined);
        const entry = latest?.kind === 'update' && latest.result === 'succeeded' ? latest.config[target.configKey] : undefined;
        return entry === undefined ? null : toNumber(entry.value);
      })(),
    );
  }

  /** A preview-only refresh of the target's stack and a read of its driving key; changes nothing. */
  async checkDrift(target: TargetConfig, opts: { signal?: AbortSignal } = {}): Promise<{ resources: DriftReport; value: number | null }> {
    return this.#track(
      (async () => {
        const opened = await this.#open(target);
        const resources = await call(`checking ${describe(target)} for drift (refresh --preview-only)`, () =>
          this.#guard.unlocking(opened.stack, { dryRun: true }, () => this.#guard.cancellable(opened.cli, opts.signal, (signal) => previewRefresh(opened.stack, signal))),
        );
        const value = await this.#read(target, opts.signal);
        // A drift check is not the read an apply may reuse.
        this.#seen.delete(target.name);
        return { resources, value };
      })(),
    );
  }

  /**
   * Opens the target's stack without reading or changing anything: rejects with
   * StackNotFoundError when it does not exist (and the target may not create it), or with what
   * kept the CLI from reaching the backend. For `pulumiscale validate`.
   */
  async check(target: TargetConfig): Promise<void> {
    await this.#track(this.#open(target));
  }

  async forget(target: TargetConfig): Promise<void> {
    const opening = this.#stacks.get(target.name);
    this.#stacks.delete(target.name);
    this.#seen.delete(target.name);
    const opened = await opening?.catch(() => undefined);
    if (opened?.ownedDir !== undefined) await rm(opened.ownedDir, { recursive: true, force: true });
  }

  /** Waits for running operations, then drops every workspace and removes the folders it created. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#running]);
    const opened = await Promise.allSettled([...this.#stacks.values()]);
    this.#stacks.clear();
    for (const result of opened) {
      if (result.status === 'fulfilled' && result.value.ownedDir !== undefined) {
        await rm(result.value.ownedDir, { recursive: true, force: true });
      }
    }
    for (const dir of [this.#shimDir, this.#niceDir]) if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    this.#shimDir = undefined;
    this.#niceDir = undefined;
    this.#command = undefined;
  }

  async #read(target: TargetConfig, signal: AbortSignal | undefined): Promise<number | null> {
    const { stack, cli } = await this.#open(target);
    this.#seen.delete(target.name);
    const config = await call(`reading the config of ${describe(target)}`, () => this.#guard.cancellable(cli, signal, () => stack.getAllConfig()));
    this.#seen.set(target.name, config);
    const entry = config[target.configKey];
    return entry === undefined ? null : parseValue(target, target.configKey, entry);
  }

  async #apply(target: TargetConfig, to: number, opts: ApplyOptions): Promise<ApplyResult> {
    const opened = await this.#open(target);
    const { stack, keys } = opened;
    const dryRun = opts.dryRun;
    const log = this.#log.child({ target: target.name, stack: target.stack });
    const operation = `${dryRun ? 'preview' : 'up'} of ${describe(target)}`;

    // Every CLI call of the operation can be cancelled: a hung backend must not hold the stack.
    const seen = opts.readJustBefore === true ? this.#seen.get(target.name) : undefined;
    this.#seen.delete(target.name);
    const config =
      seen ?? (await call(`reading the config of ${describe(target)}`, () => this.#guard.cancellable(opened.cli, opts.signal, () => stack.getAllConfig())));
    const before: ConfigMap = {};
    for (const key of keys) {
      const entry = config[key];
      if (entry !== undefined) before[key] = entry;
    }
    const wanted: ConfigMap = {};
    const valueOf = (key: string): number => (key === target.configKey ? to : (opts.values?.[key] ?? to));
    for (const key of keys) wanted[key] = { value: String(valueOf(key)), secret: before[key]?.secret ?? false };

    log.debug({ to, dryRun }, `${dryRun ? 'preview' : 'up'} starting`);
    const started = performance.now();
    const changes = dryRun
      ? await this.#preview(opened, target, wanted, opts, operation)
      : await this.#up(opened, target, before, wanted, opts, operation, log);
    const durationMs = Math.round(performance.now() - started);

    const previous = before[target.configKey];
    const from = previous === undefined ? null : toNumber(previous.value);
    const result: ApplyResult = {
      kind: dryRun ? 'previewed' : 'changed',
      // A preview leaves the config as it was; a key that had none reports the previewed value.
      current: dryRun ? from : to,
      durationMs,
      changes: countsOf(changes),
      keys: keys.map((key) => {
        const was = before[key];
        return { key, from: was === undefined ? null : toNumber(was.value), to: valueOf(key) };
      }),
    };
    log.info({ from, to, kind: result.kind, durationMs, changes: result.changes }, `${dryRun ? 'preview' : 'up'} finished`);
    return result;
  }

  /** `preview` against a temporary copy of the stack's settings holding the wanted values. */
  async #preview(opened: OpenStack, target: TargetConfig, wanted: ConfigMap, opts: ApplyOptions, operation: string): Promise<OpMap> {
    const { stack } = opened;
    const values = Object.fromEntries(Object.entries(wanted).map(([key, entry]) => [key, entry.value]));
    const copy = await call(`copying the config of ${describe(target)}`, async () =>
      writePreviewConfig(await settingsDir(stack), target.stack, values),
    );
    try {
      const result = await call(operation, () =>
        this.#guard.unlocking(stack, opts, () => this.#guard.cancellable(opened.cli, opts.signal, (signal) => stack.preview({ configFile: copy.file, ...(opts.refreshFirst === true ? { refresh: true } : {}), ...(signal ? { signal } : {}) }))),
      );
      return result.changeSummary;
    } finally {
      await copy.remove();
    }
  }

  /** Sets the wanted values and runs `up`, putting the previous values back when it fails. */
  async #up(
    opened: OpenStack,
    target: TargetConfig,
    before: ConfigMap,
    wanted: ConfigMap,
    opts: ApplyOptions,
    operation: string,
    log: Logger,
  ): Promise<OpMap> {
    const { stack, keys } = opened;
    // Restoring runs after a cancel too (that is when it matters), so it has a bound of its own.
    const restore = (): Promise<void> =>
      this.#guard.cancellable(opened.cli, AbortSignal.timeout(FOLLOW_UP_TIMEOUT_MS), async () => {
        const back = keys.filter((key) => before[key] !== undefined);
        const absent = keys.filter((key) => before[key] === undefined);
        if (back.length > 0) await stack.setAllConfig(Object.fromEntries(back.map((key) => [key, before[key]!])));
        if (absent.length > 0) await stack.removeAllConfig(absent);
      });
    // A project stack with plain values: the values and the update are one CLI process. Else
    // setting the keys is the first half of the operation: cut off, it is undone like a failed `up`.
    const oneProcess = target.workDir !== undefined && Object.values(wanted).every((entry) => !entry.secret) && runsDirectly(stack);
    const values = Object.fromEntries(Object.entries(wanted).map(([key, entry]) => [key, entry.value]));
    if (opts.refreshFirst === true) {
      // Before anything is set: a failed refresh fails the operation with nothing to undo.
      const found = await call(`refreshing ${describe(target)} before its up`, () =>
        this.#guard.unlocking(stack, opts, () => this.#guard.cancellable(opened.cli, opts.signal, (signal) => refreshStack(stack, signal))),
      );
      if (Object.keys(found.changes).length > 0) log.info({ changes: found.changes, resources: found.resources.map((r) => r.urn) }, 'refresh before up took changes made outside Pulumi');
    }
    if (!oneProcess) {
      await settle(log, `setting ${keys.join(', ')} of ${describe(target)}`, () => this.#guard.cancellable(opened.cli, opts.signal, () => stack.setAllConfig(wanted)), restore);
    }
    const startedAt = new Date();
    const run = async (signal: AbortSignal | undefined): Promise<OpMap> =>
      oneProcess ? upWithConfig(stack, values, signal) : ((await stack.up(signal ? { signal } : {})).summary.resourceChanges ?? {});
    const up = async (): Promise<OpMap> => {
      try {
        return await this.#guard.unlocking(stack, opts, () => this.#guard.cancellable(opened.cli, opts.signal, run));
      } catch (err) {
        // A refused lock means our update never started; anything else may have come after it.
        const done =
          err instanceof ConcurrentUpdateError
            ? undefined
            : await this.#guard.cancellable(opened.cli, AbortSignal.timeout(FOLLOW_UP_TIMEOUT_MS), () => succeededSince(stack, startedAt, wanted)).catch(() => undefined);
        if (done === undefined) throw err;
        // The update itself went through and only what followed it failed (the SDK's reads of
        // outputs and history, or a cancel that came too late): the new value is live, so
        // restoring would be the inconsistency.
        log.warn({ err }, 'up succeeded but what followed it failed');
        return done;
      }
    };
    return settle(log, operation, up, restore);
  }

  /** The target's stack, opened once; a failed opening is forgotten so the next call retries. */
  #open(target: TargetConfig): Promise<OpenStack> {
    let opening = this.#stacks.get(target.name);
    if (opening === undefined) {
      opening = this.#create(target);
      this.#stacks.set(target.name, opening);
      const mine = opening;
      void mine.catch(() => {
        if (this.#stacks.get(target.name) === mine) this.#stacks.delete(target.name);
      });
    }
    return opening;
  }

  async #create(target: TargetConfig): Promise<OpenStack> {
    const pulumiCommand = await this.#cli();
    const envVars = this.#envOf(target);
    const keys = configKeysOf(target);
    const started = performance.now();
    let opened: OpenStack;
    if (target.workDir !== undefined) {
      const workDir = path.resolve(target.workDir);
      const stack = await openStack(target, { stackName: target.stack, workDir }, { pulumiCommand, envVars });
      opened = { stack, keys, cli: { cwd: await realpath(workDir), stack: target.stack } };
    } else if (target.inline !== undefined) {
      const projectName = target.inline.project;
      const workDir = await mkdtemp(path.join(tmpdir(), 'pulumiscale-inline-'));
      try {
        const stack = await openStack(
          target,
          { stackName: target.stack, projectName, program: this.#program(target, keys) },
          {
            workDir,
            pulumiCommand,
            envVars,
            projectSettings: {
              name: projectName,
              runtime: 'nodejs',
              description: 'PulumiScale inline config stack (the program runs inside the daemon)',
            },
          },
        );
        await this.#recoverInlineConfig(target, stack, keys);
        opened = { stack, keys, ownedDir: workDir, cli: { cwd: await realpath(workDir), stack: target.stack } };
      } catch (err) {
        await rm(workDir, { recursive: true, force: true });
        throw err;
      }
    } else {
      throw new StackConfigError(`target ${target.name} has neither workDir nor inline.project`);
    }
    this.#log.debug({ target: target.name, stack: target.stack, ms: Math.round(performance.now() - started) }, 'stack opened');
    return opened;
  }

  /** Seeds an inline stack's empty config from the outputs of its last successful update. */
  async #recoverInlineConfig(target: TargetConfig, stack: Stack, keys: readonly string[]): Promise<void> {
    const what = `recovering the config of ${describe(target)}`;
    const config = await call(what, () => stack.getAllConfig());
    const missing = keys.filter((key) => config[key] === undefined);
    if (missing.length === 0) return;
    const outputs = await call(what, () => stack.outputs());
    const seed: ConfigMap = {};
    for (const key of missing) {
      const output = outputs[outputNameOf(key)];
      if (typeof output?.value === 'number' && Number.isFinite(output.value)) {
        seed[key] = { value: String(output.value), secret: output.secret };
      }
    }
    if (Object.keys(seed).length === 0) return;
    await call(what, () => stack.setAllConfig(seed));
    this.#log.info({ target: target.name, keys: Object.keys(seed) }, 'inline stack config recovered from its outputs');
  }

  /** Environment of a target's CLI calls: shared env, the backend, then the target's own. */
  #envOf(target: TargetConfig): Record<string, string> {
    return {
      // A daemon must not stall on, or log about, CLI update checks.
      PULUMI_SKIP_UPDATE_CHECK: 'true',
      ...this.#pulumi.env,
      ...(this.#pulumi.backendUrl === undefined ? {} : { PULUMI_BACKEND_URL: this.#pulumi.backendUrl }),
      ...target.env,
    };
  }

  /** The CLI, looked up once; a failed lookup is forgotten so a later call can find a fresh install. */
  #cli(): Promise<PulumiCommand> {
    if (this.#command === undefined) {
      const finding = this.#findCli();
      this.#command = finding;
      void finding.catch(() => {
        if (this.#command === finding) this.#command = undefined;
      });
    }
    return this.#command;
  }

  async #findCli(): Promise<PulumiCommand> {
    const skipVersionCheck = Boolean(this.#pulumi.env.PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK);
    const dir = this.#pulumi.cliDir;
    const nice = this.#pulumi.nice;
    if (dir === undefined) {
      const found = nice > 0 ? await findOnPath('pulumi') : undefined;
      try {
        const niced = found === undefined ? null : await this.#niceRoot(path.dirname(path.resolve(found)), nice);
        return await PulumiCommand.get({ ...(niced === null ? {} : { root: niced }), skipVersionCheck });
      } catch (err) {
        throw cliMissing(err, 'on PATH (pulumi.cliDir is not set)');
      }
    }
    const root = await this.#installRootFor(path.resolve(dir));
    try {
      const niced = nice > 0 ? await this.#niceRoot(path.join(root, 'bin'), nice) : null;
      return await PulumiCommand.get({ root: niced ?? root, skipVersionCheck });
    } catch (err) {
      throw cliMissing(err, `in ${dir}`);
    }
  }

  /**
   * An install root whose `bin/pulumi` runs the CLI of `binDir` through `nice`, beside links to
   * the language hosts and plugins of `binDir` (`pulumi-*`, which the CLI looks for next to
   * itself; the SDK puts this `bin` first on the CLI's PATH, so nothing else is linked). The
   * script execs, so the CLI keeps the process id its locks and cancels know. Null when no
   * `nice` is on PATH: the CLI then runs at the daemon's priority.
   */
  async #niceRoot(binDir: string, nice: number): Promise<string | null> {
    const niceBin = await findOnPath('nice');
    if (niceBin === undefined) {
      this.#log.warn({ nice }, "pulumi.nice is set but no `nice` is on PATH: the CLI runs at the daemon's priority");
      return null;
    }
    // A lookup tried again (its CLI failed the version check) starts from a new folder.
    if (this.#niceDir !== undefined) await rm(this.#niceDir, { recursive: true, force: true });
    const root = await mkdtemp(path.join(tmpdir(), 'pulumiscale-nice-'));
    this.#niceDir = root;
    const bin = path.join(root, 'bin');
    await mkdir(bin);
    for (const entry of await readdir(binDir)) {
      if (entry.startsWith('pulumi-')) await symlink(path.join(binDir, entry), path.join(bin, entry));
    }
    const quoted = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;
    await writeFile(path.join(bin, 'pulumi'), `#!/bin/sh\nexec ${quoted(path.resolve(niceBin))} -n ${nice} ${quoted(path.join(binDir, 'pulumi'))} "$@"\n`, { mode: 0o755 });
    return root;
  }

  /**
   * `PulumiCommand.get` takes an install root and runs `<root>/bin/pulumi`, while `cliDir` names
   * the folder holding the binary; accept both layouts, linking a temporary root when needed.
   */
  async #installRootFor(dir: string): Promise<string> {
    if (await isExecutable(path.join(dir, 'bin', 'pulumi'))) return dir;
    if (!(await isExecutable(path.join(dir, 'pulumi')))) {
      throw new PulumiCliMissingError(
        `no pulumi binary in ${dir} (pulumi.cliDir); install the Pulumi CLI there or run scripts/setup-pulumi.sh`,
      );
    }
    if (path.basename(dir) === 'bin') return path.dirname(dir);
    this.#shimDir ??= await mkdtemp(path.join(tmpdir(), 'pulumiscale-cli-'));
    await symlink(dir, path.join(this.#shimDir, 'bin')).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    return this.#shimDir;
  }

  #track<T>(op: Promise<T>): Promise<T> {
    this.#running.add(op);
    const done = (): void => {
      this.#running.delete(op);
    };
    op.then(done, done);
    return op;
  }
}

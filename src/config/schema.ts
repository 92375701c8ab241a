/**
 * The config schema: every field with its default next to it, cross-field rules in one
 * `superRefine`, and the parsed result deep-frozen by `loadConfig`. Field names are part of the
 * product contract (DESIGN.md); add freely, rename nothing.
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';

/** A duration string ("60s", "5m") parsed to milliseconds. */
const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `not a duration: "${text}" (use a unit, e.g. 500ms, 60s, 5m, 1h)` });
    return z.NEVER;
  }
  return ms;
});

/** A byte size: a number of bytes or a string such as "1mb", "512kb". */
const byteSize = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^(\d+)\s*(b|kb|mb)?$/i.exec(v.trim());
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `not a size: "${v}" (use bytes, or e.g. 512kb, 1mb)` });
    return z.NEVER;
  }
  const mult = { b: 1, kb: 1024, mb: 1024 * 1024 }[(m[2] ?? 'b').toLowerCase() as 'b' | 'kb' | 'mb'];
  return Number(m[1]) * mult;
});

const token = z.string().min(1, 'must not be empty (is its environment variable set?)');

const basicAuth = z.strictObject({ username: z.string().min(1), password: token });

export const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const CONFIG_KEY = /^[A-Za-z0-9_.-]+:[A-Za-z0-9_.:-]+$/;

const targetSchema = z
  .strictObject({
    /** A Pulumi project on disk; relative paths resolve against the config file's folder. */
    workDir: z.string().min(1).optional(),
    /**
     * Or an inline program run by the daemon itself: a project of that name whose program
     * exports each of the target's config keys as a stack output (a "config stack" that other
     * stacks read through a StackReference).
     */
    inline: z.strictObject({ project: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only') }).optional(),
    stack: z.string().min(1),
    /** The numeric config key the target owns, `namespace:key`. */
    configKey: z.string().regex(CONFIG_KEY, 'must be namespace:key, e.g. web:replicas'),
    min: z.number().int().nonnegative(),
    max: z.number().int().nonnegative(),
    /** The adjustment of a bare up/down. */
    step: z.number().int().positive().default(1),
    cooldown: z
      .strictObject({ up: duration.default(60_000), down: duration.default(300_000) })
      .default({ up: 60_000, down: 300_000 }),
    /** The action of an alert that names none. */
    defaultAction: z.enum(['up', 'down']).default('up'),
    /** A paused target records intents as skipped and changes nothing. */
    paused: z.boolean().default(false),
    /** Extra environment for the target's Pulumi operations (e.g. PULUMI_CONFIG_PASSPHRASE). */
    env: z.record(z.string(), z.string()).default({}),
    /**
     * Create the stack when it does not exist. Off by default: a misspelt stack name must not
     * become a new empty stack that the first alert deploys the whole project into.
     */
    createStack: z.boolean().default(false),
  })
  .superRefine((t, ctx) => {
    // `when` makes these cross-field rules run even when another field failed, so that
    // `validate` reports every problem at once; hence the defensive checks on types.
    if (typeof t !== 'object' || t === null) return;
    if (typeof t.max === 'number' && typeof t.min === 'number' && t.max < t.min) ctx.addIssue({ code: 'custom', path: ['max'], message: 'must be >= min' });
    if ((t.workDir === undefined) === (t.inline === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['workDir'], message: 'set exactly one of workDir or inline' });
    }
  }, { when: () => true });

export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        /** Loopback by default: exposing the daemon is a choice (the container image makes it). */
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** The largest request body accepted; larger ones get 413. */
        bodyLimit: byteSize.default(1024 * 1024),
      })
      .default({ host: '127.0.0.1', port: 8080, bodyLimit: 1024 * 1024 }),
    engine: z
      .strictObject({
        /** How many stacks may run an operation at once. */
        concurrency: z.number().int().positive().default(2),
        /** Preview every change instead of applying it. */
        dryRun: z.boolean().default(false),
        /** How long a drain waits for running operations before exiting anyway. */
        drainTimeout: duration.default(900_000),
        /**
         * The longest one Pulumi operation may run: past it the CLI is cancelled (SIGINT, then
         * SIGKILL after `cancelGrace`), the previous config restored, and a `failed` event
         * recorded with PS_PULUMI_TIMEOUT.
         */
        operationTimeout: duration.default(1_800_000),
        /** How long a cancelled Pulumi CLI gets to stop cleanly after SIGINT before SIGKILL. */
        cancelGrace: duration.default(10_000),
        retry: z
          .strictObject({
            maxAttempts: z.number().int().positive().default(5),
            baseDelay: duration.default(2_000),
            maxDelay: duration.default(60_000),
          })
          .default({ maxAttempts: 5, baseDelay: 2_000, maxDelay: 60_000 }),
      })
      .default({
        concurrency: 2,
        dryRun: false,
        drainTimeout: 900_000,
        operationTimeout: 1_800_000,
        cancelGrace: 10_000,
        retry: { maxAttempts: 5, baseDelay: 2_000, maxDelay: 60_000 },
      }),
    store: z
      .strictObject({
        driver: z.literal('sqlite').default('sqlite'),
        path: z.string().min(1).default('.pulumiscale/state.db'),
        /** How many events the history keeps per target (oldest trimmed). */
        historyLimit: z.number().int().positive().default(10_000),
        /** How many events the history keeps in all, across targets (oldest trimmed first). */
        historyTotalLimit: z.number().int().positive().default(100_000),
      })
      .default({ driver: 'sqlite', path: '.pulumiscale/state.db', historyLimit: 10_000, historyTotalLimit: 100_000 }),
    pulumi: z
      .strictObject({
        /** Backend URL for every target (PULUMI_BACKEND_URL); a relative file:// path resolves against the config's folder. */
        backendUrl: z.string().min(1).optional(),
        /** A folder holding the `pulumi` binary to use instead of the one on PATH. */
        cliDir: z.string().min(1).optional(),
        /** Environment for every Pulumi operation (a target's `env` adds to it). */
        env: z.record(z.string(), z.string()).default({}),
      })
      .default({ env: {} }),
    webhooks: z
      .strictObject({
        alertmanager: z
          .strictObject({
            bearerTokens: z.array(token).default([]),
            basicAuth: z.array(basicAuth).default([]),
          })
          .default({ bearerTokens: [], basicAuth: [] }),
        cloudwatch: z
          .strictObject({
            verifySignature: z.boolean().default(true),
            /** Accepted TopicArns; empty accepts none while verifySignature is on. */
            topicArns: z.array(z.string().min(1)).default([]),
            /** Confirm SNS subscriptions by fetching SubscribeURL (after the host check). */
            autoConfirm: z.boolean().default(false),
            /** How long a MessageId is remembered for replay detection. */
            replayWindow: duration.default(86_400_000),
            /** HTTP basic credentials SNS must send (from the subscription URL's `user:pass@`); empty leaves the route open. */
            basicAuth: z.array(basicAuth).default([]),
          })
          .default({ verifySignature: true, topicArns: [], autoConfirm: false, replayWindow: 86_400_000, basicAuth: [] }),
      })
      .default({
        alertmanager: { bearerTokens: [], basicAuth: [] },
        cloudwatch: { verifySignature: true, topicArns: [], autoConfirm: false, replayWindow: 86_400_000, basicAuth: [] },
      }),
    api: z.strictObject({ bearerTokens: z.array(token).default([]) }).default({ bearerTokens: [] }),
    log: z
      .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .default({ level: 'info' }),
    // Who owns which stack and key is checked in load.ts, once paths are resolved and projects
    // read: two spellings of one folder, or two folders of one project, name the same stack.
    targets: z.record(z.string().regex(TARGET_NAME, 'target names are letters, digits, _ . - (max 63)'), targetSchema),
  });

/** The parsed, validated config (durations in ms, sizes in bytes). */
export type Config = z.output<typeof configSchema>;
/** One target's parsed config, with its name and its stack's key (config/stack-key.ts). */
export type TargetConfig = Config['targets'][string] & { name: string; stackKey: string };

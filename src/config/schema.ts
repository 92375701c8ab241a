/**
 * The config schema: every field with its default next to it, cross-field rules in one
 * `superRefine`, and the parsed result deep-frozen by `loadConfig`. Field names are part of the
 * product contract (DESIGN.md); add freely, rename nothing.
 */
import { z } from 'zod';
import { cronProblem, sameCron } from '../schedule/cron.js';
import type { Schedule } from '../schedule/schedule.js';
import { timeZoneProblem } from '../schedule/zone.js';
import { publicKeyProblem } from '../notify/chat/discord-signature.js';
import { MAX_DURATION_MS, MAX_DURATION_TEXT, parseDuration } from './duration.js';

/** The event kinds a notification destination may ask for (types.ts `EventKind`). */
export const EVENT_KINDS = ['changed', 'previewed', 'skipped', 'ignored', 'failed', 'unlocked', 'missed', 'awaiting-approval', 'drift'] as const;

/** A duration string ("60s", "5m") parsed to milliseconds. */
const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `not a duration: "${text}" (use a unit, e.g. 500ms, 60s, 5m, 1h)` });
    return z.NEVER;
  }
  if (ms > MAX_DURATION_MS) {
    ctx.addIssue({ code: 'custom', message: `too long: "${text}" (at most ${MAX_DURATION_TEXT}, 100 years)` });
    return z.NEVER;
  }
  return ms;
});

/**
 * The longest wait a Node.js timer takes (2^31-1 ms, just under 25 days): a longer one fires at
 * once. Durations that are handed to a timer as they are stay within it.
 */
const MAX_TIMER_MS = 2_147_483_647;

/** A duration that a timer waits for as it is: at most {@link MAX_TIMER_MS}. */
const timerDuration = (schema: z.ZodType<number, string>) => schema.refine((ms) => ms <= MAX_TIMER_MS, { message: 'must be at most 24d (a longer timer would fire at once)' });

/** A duration of at least `min` ms, where less makes no sense (a timer re-armed back to back). */
const durationAtLeast = (min: number, unit: string) =>
  duration.refine((ms) => ms >= min, { message: `must be at least ${unit}` });

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

/** How many events the history keeps per target (oldest trimmed). */
const historyLimit = z.number().int().positive().default(10_000);
/** How many events the history keeps in all, across targets (oldest trimmed first). */
const historyTotalLimit = z.number().int().positive().default(100_000);

/**
 * The `store` section, one shape per driver (src/store/index.ts builds each). A section without
 * `driver` is SQLite's, so every config written before PostgreSQL existed reads as it did.
 */
const storeSection = z
  .discriminatedUnion(
    'driver',
    [
      z.strictObject({
        driver: z.literal('sqlite').default('sqlite'),
        path: z.string().min(1).default('.pulumiscale/state.db'),
        historyLimit,
        historyTotalLimit,
      }),
      z.strictObject({
        driver: z.literal('postgres'),
        /** A libpq-style URL, usually from the environment ("${DATABASE_URL}"): it holds a password. */
        url: token,
        /** Connections the daemon opens at most. */
        poolSize: z.number().int().positive().default(10),
        /** Any statement running longer is cancelled, so a stuck database turns into 503s rather than hung requests. */
        // PostgreSQL's statement_timeout and the pool's connection timeout take at most 2^31-1 ms too.
        statementTimeout: timerDuration(durationAtLeast(100, '100ms')).default(5_000),
        /**
         * How long a replica's lease on a stack lasts without renewal (renewed every third of it).
         * A replica that stops for longer loses its stacks to the others.
         */
        leaseTTL: durationAtLeast(1_000, '1s').default(15_000),
        /** This replica's id in leases and `GET /api/v1/cluster` (default: the host name and a random suffix, new at each start). */
        replicaId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$/, 'letters, digits, _ . : - (at most 63)').optional(),
        historyLimit,
        historyTotalLimit,
      }),
    ],
    // zod's own message lists `undefined` among the drivers (the sqlite default).
    { error: (issue) => (issue.code === 'invalid_union' ? 'unknown driver: use sqlite (the default) or postgres' : undefined) },
  )
  .default({ driver: 'sqlite', path: '.pulumiscale/state.db', historyLimit: 10_000, historyTotalLimit: 100_000 });

export const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const CONFIG_KEY = /^[A-Za-z0-9_.-]+:[A-Za-z0-9_.:-]+$/;

/** Bands per direction at most: AWS's limit for one step scaling policy. */
const MAX_STEP_BANDS = 20;

const stepBand = z.strictObject({
  /** Lower bound of the metric; omitted: -∞ (lowest band only). */
  from: z.number().optional(),
  /** Upper bound of the metric; omitted: +∞ (highest band only). */
  to: z.number().optional(),
  by: z.number(),
});

/**
 * One direction's step rule; policy/steps.ts applies it. The bands must tile one range of the
 * metric without gaps or overlaps, as AWS requires of `StepAdjustments`: a value falling
 * between two bands would silently fall back to `step`, and one falling in two would depend on
 * the order they were written in.
 */
const stepRule = z
  .strictObject({
    adjustment: z.enum(['change', 'percent', 'exact']).default('change'),
    relativeTo: z.enum(['value', 'threshold']).default('value'),
    bands: z.array(stepBand).min(1, 'needs at least one band'),
    /** For `percent`: the smallest change a band makes. */
    minMagnitude: z.number().int().positive().optional(),
  })
  .superRefine((rule, ctx) => {
    // Runs even when a field failed (`when`), so every problem is reported at once; hence the
    // defensive checks on types.
    if (typeof rule !== 'object' || rule === null) return;
    const issue = (path: (string | number)[], message: string): void => ctx.addIssue({ code: 'custom', path, message });
    if (rule.minMagnitude !== undefined && rule.adjustment !== 'percent') issue(['minMagnitude'], 'applies to adjustment: percent only');
    const bands = Array.isArray(rule.bands) ? rule.bands : [];
    if (bands.length > MAX_STEP_BANDS) issue(['bands'], `at most ${MAX_STEP_BANDS} bands (${bands.length} given)`);

    type Band = { from?: number; to?: number; by: number; at: number };
    const valid: Band[] = [];
    bands.forEach((b: unknown, at) => {
      if (typeof b !== 'object' || b === null) return;
      const { from, to, by } = b as Record<string, unknown>;
      if (typeof by === 'number') {
        if (rule.adjustment === 'exact') {
          if (!Number.isInteger(by) || by < 0) issue(['bands', at, 'by'], 'must be a whole number >= 0 with adjustment: exact (it is the new value)');
        } else if (rule.adjustment === 'change' && !Number.isInteger(by)) {
          issue(['bands', at, 'by'], 'must be a whole number with adjustment: change');
        }
      }
      if (typeof from === 'number' && typeof to === 'number' && from >= to) issue(['bands', at, 'to'], `must be above from (${from})`);
      const bound = (v: unknown): v is number | undefined => v === undefined || typeof v === 'number';
      if (bound(from) && bound(to) && typeof by === 'number') valid.push({ from, to, by, at });
    });

    // Checked in the metric's order, whatever order the bands were written in.
    const sorted = valid.toSorted((a, b) => (a.from ?? Number.NEGATIVE_INFINITY) - (b.from ?? Number.NEGATIVE_INFINITY));
    sorted.forEach((band, k) => {
      if (band.from === undefined && k > 0) issue(['bands', band.at, 'from'], 'only the lowest band may leave from open');
      if (band.to === undefined && k < sorted.length - 1) issue(['bands', band.at, 'to'], 'only the highest band may leave to open');
      const next = sorted[k + 1];
      if (next === undefined || band.to === undefined || next.from === undefined || band.to === next.from) return;
      const what = band.to < next.from ? `a gap between ${band.to} and ${next.from}` : `bands overlap between ${next.from} and ${band.to}`;
      issue(['bands', next.at, 'from'], `must be ${band.to}, where band ${band.at} ends (${what})`);
    });
  }, { when: () => true });

/** A cron expression in node-cron's syntax (schedule/cron.ts), checked to parse and to fire. */
const cronText = z.string().superRefine((text, ctx) => {
  const problem = cronProblem(text);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * One schedule of a target (schedule/schedule.ts): a schedule with `to` is a point, any other a
 * window. Both kinds share one object so that a misplaced key is reported against the kind the
 * schedule is, rather than as two failed union branches.
 */
const scheduleEntry = z
  .strictObject({
    /** Unique within the target; in `schedule:<name>` sources and metric labels. */
    name: z.string().regex(TARGET_NAME, 'schedule names are letters, digits, _ . - (max 63)'),
    /** When a window starts or a point fires. */
    cron: cronText,
    /** Window: when it ends (the first fire after its start); or `duration`. */
    end: cronText.optional(),
    /** Window: how long it lasts; or `end`. */
    duration: duration.optional(),
    /** The IANA zone the crons are read in. */
    timezone: z
      .string()
      .superRefine((tz, ctx) => {
        const problem = timeZoneProblem(tz);
        if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default('UTC'),
    /** Window: bounds while active; either or both. */
    min: z.number().int().nonnegative().optional(),
    max: z.number().int().nonnegative().optional(),
    /** Window: overlapping windows, the highest wins (default 0). */
    priority: z.number().int().optional(),
    /** Point: the value set at each fire. */
    to: z.number().int().nonnegative().optional(),
    /** Point: a fire found later than this (after downtime) is recorded as missed (default 5m). */
    startingDeadline: duration.optional(),
  })
  .superRefine((s, ctx) => {
    // Runs even when a field failed (`when`), so every problem is reported at once.
    if (typeof s !== 'object' || s === null) return;
    const issue = (path: string[], message: string): void => ctx.addIssue({ code: 'custom', path, message });
    const bounded = s.min !== undefined || s.max !== undefined;
    const windowKeys = (['end', 'duration', 'priority'] as const).filter((k) => s[k] !== undefined);
    if (s.to !== undefined) {
      if (bounded) issue(['to'], 'a point sets to, a window sets min and max: not both');
      for (const k of windowKeys) issue([k], 'applies to windows only (this schedule has to: it is a point)');
      if (typeof s.startingDeadline === 'number' && s.startingDeadline <= 0) issue(['startingDeadline'], 'must be above 0');
      return;
    }
    if (s.startingDeadline !== undefined && !bounded && windowKeys.length === 0) {
      issue(['to'], 'a point needs to: the value it sets');
      return;
    }
    if (s.startingDeadline !== undefined) issue(['startingDeadline'], 'applies to points only (a schedule with to)');
    if (!bounded) issue(['min'], 'a window needs min, max or both (or to, for a point)');
    if (typeof s.min === 'number' && typeof s.max === 'number' && s.min > s.max) issue(['max'], 'must be >= min');
    if (s.end !== undefined && s.duration !== undefined) issue(['duration'], 'set end or duration, not both');
    else if (s.end === undefined && s.duration === undefined) issue(['end'], 'a window needs end (a cron) or duration');
    if (typeof s.end === 'string' && typeof s.cron === 'string' && sameCron(s.end, s.cron)) {
      issue(['end'], 'must differ from cron: the window would end as it starts');
    }
    if (s.duration === 0) issue(['duration'], 'must be above 0: the window would end as it starts');
  }, { when: () => true })
  .transform((s) =>
    s.to === undefined
      ? {
          kind: 'window' as const,
          name: s.name,
          cron: s.cron,
          ...(s.end === undefined ? {} : { end: s.end }),
          ...(s.duration === undefined ? {} : { duration: s.duration }),
          timezone: s.timezone,
          ...(s.min === undefined ? {} : { min: s.min }),
          ...(s.max === undefined ? {} : { max: s.max }),
          priority: s.priority ?? 0,
        }
      : { kind: 'point' as const, name: s.name, cron: s.cron, timezone: s.timezone, to: s.to, startingDeadline: s.startingDeadline ?? 300_000 },
  );

/** A target's schedules; names are unique, as they key point fires in the store. */
const schedules = z.array(scheduleEntry).superRefine((list, ctx) => {
  if (!Array.isArray(list)) return;
  const seen = new Map<string, number>();
  list.forEach((s: unknown, at) => {
    const name = typeof s === 'object' && s !== null ? (s as { name?: unknown }).name : undefined;
    if (typeof name !== 'string') return;
    const first = seen.get(name);
    if (first === undefined) seen.set(name, at);
    else ctx.addIssue({ code: 'custom', path: [at, 'name'], message: `duplicate name "${name}" (also schedule ${first})` });
  });
}, { when: () => true });

/**
 * A key derived from the driving value x: round(per * x + plus), clamped to [min, max]
 * (policy/derived.ts). Set with the driving key in the same `up`, and put back with it.
 */
const derivedKey = z.strictObject({
  key: z.string().regex(CONFIG_KEY, 'must be namespace:key, e.g. db:maxConnections'),
  per: z.number().default(1),
  plus: z.number().default(0),
  min: z.number().int().optional(),
  max: z.number().int().optional(),
  /** How per * x + plus becomes a whole number. */
  round: z.enum(['nearest', 'up', 'down']).default('nearest'),
});

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
    /** The numeric config key the target owns, `namespace:key`: the driving value. */
    configKey: z.string().regex(CONFIG_KEY, 'must be namespace:key, e.g. web:replicas'),
    /** Keys derived from the driving value, set together with it in one `up` (composite targets). */
    derived: z.array(derivedKey).default([]),
    min: z.number().int().nonnegative(),
    max: z.number().int().nonnegative(),
    /** The adjustment of a bare up/down. */
    step: z.number().int().positive().default(1),
    cooldown: z
      .strictObject({ up: duration.default(60_000), down: duration.default(300_000) })
      .default({ up: 60_000, down: 300_000 }),
    /**
     * Step rules per direction (policy/steps.ts): how far a signal moves the target, by the
     * metric value its alert carries. Without them, or for a value no band covers, a signal
     * moves by `step`.
     */
    steps: z.strictObject({ up: stepRule.optional(), down: stepRule.optional() }).optional(),
    /**
     * Stabilization windows (Kubernetes HPA `behavior`): a scale-down goes only as low as the
     * highest value desired within `down`, a scale-up only as high as the lowest within `up`.
     * 0s turns a direction's window off; both are off by default, so nothing changes unless
     * configured.
     */
    stabilization: z
      .strictObject({ up: duration.default(0), down: duration.default(0) })
      .default({ up: 0, down: 0 }),
    /**
     * Scheduled scaling (schedule/): windows that replace `min`/`max` while active, and points
     * that set the value at each fire, in any IANA time zone.
     */
    schedules: schedules.default([]),
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
    /**
     * Changes the daemon decides by itself (alerts, schedules) wait for a person: previewed,
     * posted to the `via` notification destination, applied once approved. Operator commands
     * (the API, chat) are a person's decision already and do not wait.
     */
    approval: z
      .strictObject({
        /** The name of a `notifications` entry (a Slack one gets Approve and Reject buttons). */
        via: z.string().min(1),
        /** How long a request waits before it expires (recorded as skipped, approval-expired). */
        timeout: durationAtLeast(1_000, '1s').default(1_800_000),
      })
      .optional(),
    /**
     * Drift (engine/drift.ts): check the stack on a schedule with a preview-only refresh and a
     * read of the owned keys, and/or refresh for real right before each `up`.
     */
    drift: z
      .strictObject({
        /**
         * `before-scale` (a real refresh before each up), `{ every: 1h }` (checks on a schedule),
         * `both` (the two, checks every hour), or `{ every: 1h, beforeScale: true }`.
         */
        refresh: z.union([
          z.enum(['before-scale', 'both']),
          z.strictObject({ every: durationAtLeast(1_000, '1s'), beforeScale: z.boolean().default(false) }),
        ]),
        /** What a changed owned key does: recorded (`report`), taken as current (`adopt`), or put back with an up (`revert`). */
        onDrift: z.enum(['report', 'adopt', 'revert']).default('report'),
      })
      .transform((d) => ({
        beforeScale: d.refresh === 'before-scale' || d.refresh === 'both' || (typeof d.refresh === 'object' && d.refresh.beforeScale),
        every: typeof d.refresh === 'object' ? d.refresh.every : d.refresh === 'both' ? 3_600_000 : null,
        onDrift: d.onDrift,
      }))
      .optional(),
    /**
     * The preview guard: every change is previewed first, and one that would replace or delete
     * more resources than allowed is not applied (skipped, reason guard). Unset: no limit.
     */
    guard: z
      .strictObject({
        maxReplace: z.number().int().nonnegative().optional(),
        maxDelete: z.number().int().nonnegative().optional(),
      })
      .optional(),
  })
  .superRefine((t, ctx) => {
    // `when` makes these cross-field rules run even when another field failed, so that
    // `validate` reports every problem at once; hence the defensive checks on types.
    if (typeof t !== 'object' || t === null) return;
    if (typeof t.max === 'number' && typeof t.min === 'number' && t.max < t.min) ctx.addIssue({ code: 'custom', path: ['max'], message: 'must be >= min' });
    if ((t.workDir === undefined) === (t.inline === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['workDir'], message: 'set exactly one of workDir or inline' });
    }
    const derived: unknown[] = Array.isArray(t.derived) ? t.derived : [];
    const seen = new Map<string, number>();
    const outputs = new Set<string>();
    derived.forEach((d, at) => {
      if (typeof d !== 'object' || d === null) return;
      const { key, min, max } = d as { key?: unknown; min?: unknown; max?: unknown };
      if (typeof key === 'string') {
        if (key === t.configKey) ctx.addIssue({ code: 'custom', path: ['derived', at, 'key'], message: `is the driving key (configKey) itself` });
        const first = seen.get(key);
        if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['derived', at, 'key'], message: `derived twice (also derived ${first})` });
        seen.set(key, at);
      }
      if (typeof min === 'number' && typeof max === 'number' && min > max) {
        ctx.addIssue({ code: 'custom', path: ['derived', at, 'max'], message: `must be >= min (${min}): no value could hold` });
      }
      // An inline program exports each key as an output named after the key's name part.
      const name = typeof key === 'string' ? key.slice(key.indexOf(':') + 1) : undefined;
      const driving = typeof t.configKey === 'string' ? t.configKey.slice(t.configKey.indexOf(':') + 1) : undefined;
      if (t.inline !== undefined && name !== undefined && (name === driving || outputs.has(name))) {
        ctx.addIssue({ code: 'custom', path: ['derived', at, 'key'], message: `an inline target exports each key as the output "${name}": two keys would share it` });
      }
      if (name !== undefined) outputs.add(name);
    });
  }, { when: () => true });

/** An http(s) URL (a webhook to post to, the daemon's public address). */
const httpUrl = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // The text may be a secret (a webhook URL): it is never repeated in the message.
    ctx.addIssue({ code: 'custom', message: 'not a URL (is its environment variable set?)' });
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') ctx.addIssue({ code: 'custom', message: `must be an http(s) URL, not ${url.protocol}` });
  // fetch refuses such URLs, and its refusal would quote the credentials.
  if (url.username !== '' || url.password !== '') ctx.addIssue({ code: 'custom', message: 'must not carry credentials (user:password@)' });
});

/**
 * Where scaling events are posted (notify/): each destination gets the events of the kinds and
 * targets it asks for, through a durable outbox, in order, at the platform's pace.
 */
const notification = z.strictObject({
  /** Unique; in metric labels, logs and `approval.via`. */
  name: z.string().regex(TARGET_NAME, 'names are letters, digits, _ . - (max 63)'),
  type: z.enum(['slack', 'teams', 'discord', 'webhook']),
  /** The webhook URL: a secret (it is never logged). */
  url: httpUrl,
  /** For `webhook`: the HMAC key of `X-PulumiScale-Signature`. */
  secret: token.optional(),
  /** The event kinds sent (an approval request always goes to its `via`). */
  events: z.array(z.enum(EVENT_KINDS)).min(1).default(['changed', 'failed']),
  /** Only these targets' events; empty: every target. */
  targets: z.array(z.string().min(1)).default([]),
  /** A message not delivered within this long is dropped (logged and counted). */
  maxAge: durationAtLeast(1_000, '1s').default(3_600_000),
  /** At most this many messages per second (default: the platform's pace, about 1/s for Slack). */
  ratePerSecond: z.number().positive().max(100).optional(),
  /** How long one delivery attempt may take. */
  timeout: durationAtLeast(100, '100ms').default(10_000),
});

/** Commands and buttons from chat (notify/chat/): each platform verifies its own signature. */
const chatops = z
  .strictObject({
    slack: z
      .strictObject({
        /** The Slack app's signing secret (Basic Information, App Credentials). */
        signingSecret: token,
        /** Slack user ids allowed to act; empty: everyone in the workspace that can run the command. */
        users: z.array(z.string().min(1)).default([]),
      })
      .optional(),
    discord: z
      .strictObject({
        /** The Discord application's public key, hex (General Information). */
        publicKey: z.string().superRefine((hex, ctx) => {
          const problem = publicKeyProblem(hex);
          if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
        }),
        /** Discord user ids allowed to act; empty: everyone who can run the command. */
        users: z.array(z.string().min(1)).default([]),
      })
      .optional(),
  })
  .default({});

export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        /** Loopback by default: exposing the daemon is a choice (the container image makes it). */
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** The largest request body accepted; larger ones get 413. */
        bodyLimit: byteSize.default(1024 * 1024),
        /** The address people reach the daemon at, for links in notifications (none without it). */
        publicUrl: httpUrl.optional(),
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
        operationTimeout: durationAtLeast(1_000, '1s').default(1_800_000),
        /** How long a cancelled Pulumi CLI gets to stop cleanly after SIGINT before SIGKILL. */
        cancelGrace: timerDuration(duration).default(10_000),
        /**
         * How often every target with active signals is evaluated again, besides the moments its
         * inputs change or a cooldown or pause ends (and when Alertmanager signals expire).
         */
        evaluationInterval: durationAtLeast(100, '100ms').default(15_000),
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
        evaluationInterval: 15_000,
        retry: { maxAttempts: 5, baseDelay: 2_000, maxDelay: 60_000 },
      }),
    store: storeSection,
    pulumi: z
      .strictObject({
        /** Backend URL for every target (PULUMI_BACKEND_URL); a relative file:// path resolves against the config's folder. */
        backendUrl: z.string().min(1).optional(),
        /** A folder holding the `pulumi` binary to use instead of the one on PATH. */
        cliDir: z.string().min(1).optional(),
        /** Environment for every Pulumi operation (a target's `env` adds to it). */
        env: z.record(z.string(), z.string()).default({}),
        /**
         * The CPU niceness the CLI runs at (0 to 19; 0 runs it as the daemon runs): under load,
         * alerts and API calls are answered before a `pulumi up` takes the CPU from them.
         */
        nice: z.number().int().min(0).max(19).default(10),
      })
      .default({ env: {}, nice: 10 }),
    webhooks: z
      .strictObject({
        alertmanager: z
          .strictObject({
            bearerTokens: z.array(token).default([]),
            basicAuth: z.array(basicAuth).default([]),
            /**
             * How long a firing alert stays a signal without being sent again. Alertmanager re-sends
             * firing alerts every `repeat_interval`, so keep that below this.
             */
            signalTTL: duration.default(3_600_000),
          })
          .default({ bearerTokens: [], basicAuth: [], signalTTL: 3_600_000 }),
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
            /**
             * How long an alarm stays a signal without a new notification; 0 (the default) keeps it
             * until the alarm goes back to OK, since CloudWatch notifies only on state changes.
             */
            signalTTL: duration.default(0),
          })
          .default({ verifySignature: true, topicArns: [], autoConfirm: false, replayWindow: 86_400_000, basicAuth: [], signalTTL: 0 }),
      })
      .default({
        alertmanager: { bearerTokens: [], basicAuth: [], signalTTL: 3_600_000 },
        cloudwatch: { verifySignature: true, topicArns: [], autoConfirm: false, replayWindow: 86_400_000, basicAuth: [], signalTTL: 0 },
      }),
    api: z.strictObject({ bearerTokens: z.array(token).default([]) }).default({ bearerTokens: [] }),
    log: z
      .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .default({ level: 'info' }),
    // Who owns which stack and key is checked in load.ts, once paths are resolved and projects
    // read: two spellings of one folder, or two folders of one project, name the same stack.
    targets: z.record(z.string().regex(TARGET_NAME, 'target names are letters, digits, _ . - (max 63)'), targetSchema),
    notifications: z.array(notification).default([]),
    chatops,
  })
  .superRefine((c, ctx) => {
    // Runs even when a field failed (`when`), so every problem is reported at once.
    if (typeof c !== 'object' || c === null) return;
    const issue = (path: (string | number)[], message: string): void => ctx.addIssue({ code: 'custom', path, message });
    const targets = typeof c.targets === 'object' && c.targets !== null ? c.targets : {};
    const destinations = Array.isArray(c.notifications) ? c.notifications : [];
    const names = new Map<string, number>();
    destinations.forEach((d: unknown, at) => {
      if (typeof d !== 'object' || d === null) return;
      const { name, targets: only, type, secret } = d as { name?: unknown; targets?: unknown; type?: unknown; secret?: unknown };
      if (secret !== undefined && type !== 'webhook') issue(['notifications', at, 'secret'], 'applies to type webhook only (the chat platforms sign nothing we send)');
      if (typeof name === 'string') {
        const first = names.get(name);
        if (first === undefined) names.set(name, at);
        else issue(['notifications', at, 'name'], `duplicate name "${name}" (also notification ${first})`);
      }
      if (Array.isArray(only)) {
        only.forEach((t: unknown, k) => {
          if (typeof t === 'string' && !Object.hasOwn(targets, t)) issue(['notifications', at, 'targets', k], `no target named "${t}"`);
        });
      }
    });
    for (const [name, t] of Object.entries(targets)) {
      const via = typeof t === 'object' && t !== null ? (t as { approval?: { via?: unknown } }).approval?.via : undefined;
      if (typeof via === 'string' && !names.has(via)) {
        const known = [...names.keys()];
        issue(['targets', name, 'approval', 'via'], `no notification named "${via}" (${known.length === 0 ? 'none is configured' : `known: ${known.join(', ')}`})`);
      }
    }
  }, { when: () => true });

/** The parsed, validated config (durations in ms, sizes in bytes). */
export type Config = z.output<typeof configSchema>;
/** One target's parsed config, with its name and its stack's key (config/stack-key.ts). */
export type TargetConfig = Config['targets'][string] & { name: string; stackKey: string };

type Fits<T extends U, U> = T;
/**
 * A parsed target's schedule, declared through `Fits` as a build-time proof that the schema's
 * output is what src/schedule computes with: if they drift apart, the build stops here. The
 * proof lives here so that src/schedule needs nothing of the config (the arrow runs one way).
 */
export type ConfiguredSchedule = Fits<TargetConfig['schedules'][number], Schedule>;

/**
 * The management API: target state, manual scaling and history. Manual `to` values outside a
 * target's bounds are refused (422) rather than clamped: an operator asked for that exact
 * number, as AWS refuses a desired capacity outside the group's bounds.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseDuration } from '../config/duration.js';
import { boundsAt, timeline } from '../schedule/index.js';
import { PulumiScaleError } from '../errors.js';
import type { Adjustment, Intent } from '../types.js';
import { requireCredentials } from './auth.js';
import type { AppDeps } from './deps.js';

const scaleBody = z
  .strictObject({
    to: z.number().int().nonnegative().optional(),
    by: z.number().int().refine((n) => n !== 0, 'must not be 0').optional(),
    action: z.enum(['up', 'down']).optional(),
    dryRun: z.boolean().optional(),
    reason: z.string().max(500).optional(),
  })
  .refine((b) => [b.to, b.by, b.action].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of "to", "by" or "action"',
  });

const pauseBody = z.strictObject({
  for: z.string().min(1).max(40),
  direction: z.enum(['both', 'up', 'down']).default('both'),
  reason: z.string().max(500).optional(),
});

/** Refuses a change while the daemon drains (the pause would be lost with the process's work). */
function refuseWhileDraining(deps: AppDeps): void {
  if (deps.engine.isDraining()) throw new PulumiScaleError('PS_DRAINING', 'the daemon is draining; retry on another replica or later');
}

/** The name of a configured target, or PS_TARGET_UNKNOWN. */
function known(deps: AppDeps, name: string): string {
  if (!Object.hasOwn(deps.config.targets, name)) throw new PulumiScaleError('PS_TARGET_UNKNOWN', `no target named "${name}"`);
  return name;
}

const timelineQuery = z.strictObject({ hours: z.coerce.number().int().min(1).max(24 * 31).default(48) });

const eventsQuery = z.strictObject({
  target: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.string().min(1).optional(),
});

/**
 * Registers the `/api/v1` routes, each behind the API's credentials.
 *
 * Why per route and not by URL prefix: the router decodes the path before it matches
 * (`/%61pi/v1/targets` reaches `/api/v1/targets`), so any check on the raw URL can be walked
 * around by spelling the path differently. The hook lives in an encapsulated plugin and runs
 * for every route registered inside it, whatever spelling of the path matched that route.
 */
export function registerApiRoutes(app: FastifyInstance, deps: AppDeps): void {
  void app.register(async (api) => {
    api.addHook('onRequest', async (req) => requireCredentials(req, deps.config.api));
    apiRoutes(api, deps);
  });
}

function apiRoutes(app: FastifyInstance, deps: AppDeps): void {
  const newId = deps.newId ?? randomUUID;
  const now = deps.now ?? Date.now;

  app.get('/api/v1/targets', async () => deps.engine.states());

  app.get<{ Params: { name: string } }>('/api/v1/targets/:name', async (req) => {
    const state = await deps.engine.state(req.params.name);
    if (!state) throw new PulumiScaleError('PS_TARGET_UNKNOWN', `no target named "${req.params.name}"`);
    return state;
  });

  app.post<{ Params: { name: string } }>('/api/v1/targets/:name/scale', async (req, reply) => {
    refuseWhileDraining(deps);
    const target = deps.config.targets[known(deps, req.params.name)] as (typeof deps.config.targets)[string];
    const body = scaleBody.parse(req.body ?? {});
    // The bounds in effect now: a schedule window's replace the target's own while it lasts.
    const bounds = boundsAt(target, now());
    if (body.to !== undefined && (body.to < bounds.min || body.to > bounds.max)) {
      const why = bounds.source === 'config' ? '' : ` (the bounds of ${bounds.source})`;
      throw new PulumiScaleError(
        'PS_OUT_OF_BOUNDS',
        `"to": ${body.to} is outside [${bounds.min}, ${bounds.max}] of target ${req.params.name}${why}`,
        { details: { min: bounds.min, max: bounds.max, source: bounds.source } },
      );
    }
    const adjustment: Adjustment =
      body.to !== undefined
        ? { type: 'to', to: body.to }
        : body.by !== undefined
          ? { type: 'by', by: body.by }
          : { type: 'step', direction: body.action ?? 'up' };
    const intent: Intent = {
      id: newId(),
      target: req.params.name,
      adjustment,
      dryRun: body.dryRun ?? false,
      source: 'api',
      reason: body.reason ?? 'manual',
      receivedAt: new Date(now()).toISOString(),
      bounds: 'reject',
      evidence: {},
    };
    const { queued } = await deps.engine.command(intent);
    // `pending` says where the command stands: the next to run, and how many are queued.
    const state = await deps.engine.state(req.params.name);
    return reply.status(202).send({ accepted: true, intent, pending: { intent: state?.pending ?? intent, count: queued } });
  });

  app.post<{ Params: { name: string } }>('/api/v1/targets/:name/pause', async (req, reply) => {
    refuseWhileDraining(deps);
    const target = known(deps, req.params.name);
    const body = pauseBody.parse(req.body ?? {});
    const ms = parseDuration(body.for) ?? 0;
    const until = new Date(now() + ms);
    // A huge "for" (99999999999d) ends past the last date a Date holds: a 400, not a 500.
    if (ms <= 0 || Number.isNaN(until.getTime())) {
      const problem = ms <= 0 ? 'not a positive duration' : 'a duration that ends past any date';
      throw new PulumiScaleError('PS_PAYLOAD_INVALID', `"for": "${body.for.slice(0, 40)}" is ${problem} (use a unit: 30m, 2h, 1h30m)`, {
        details: [{ path: 'for', message: problem, code: 'custom' }],
      });
    }
    const pause = { until: until.toISOString(), direction: body.direction, reason: body.reason ?? 'paused through the API' };
    return reply.status(200).send(await deps.engine.pause(target, pause));
  });

  app.get<{ Params: { name: string } }>('/api/v1/targets/:name/timeline', async (req) => {
    const target = deps.config.targets[known(deps, req.params.name)] as (typeof deps.config.targets)[string];
    const { hours } = timelineQuery.parse(req.query);
    const from = now();
    // Each change with the bounds in effect just after it, in UTC and in the schedule's zone.
    return timeline(target.schedules, from, hours).map((entry) => ({
      ...entry,
      bounds: boundsAt(target, Date.parse(entry.at) + 1),
    }));
  });

  app.post<{ Params: { name: string } }>('/api/v1/targets/:name/resume', async (req, reply) => {
    refuseWhileDraining(deps);
    const target = known(deps, req.params.name);
    return reply.status(200).send(await deps.engine.pause(target, null));
  });

  app.get('/api/v1/events', async (req) => {
    const q = eventsQuery.parse(req.query);
    return deps.store.listEvents({
      limit: q.limit,
      ...(q.target ? { target: q.target } : {}),
      ...(q.before ? { before: q.before } : {}),
    });
  });
}

/**
 * The management API: target state, manual scaling and history. Manual `to` values outside a
 * target's bounds are refused (422) rather than clamped: an operator asked for that exact
 * number, as AWS refuses a desired capacity outside the group's bounds.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
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
    if (deps.engine.isDraining()) throw new PulumiScaleError('PS_DRAINING', 'the daemon is draining; retry on another replica or later');
    const target = deps.config.targets[req.params.name];
    if (!target) throw new PulumiScaleError('PS_TARGET_UNKNOWN', `no target named "${req.params.name}"`);
    const body = scaleBody.parse(req.body ?? {});
    if (body.to !== undefined && (body.to < target.min || body.to > target.max)) {
      throw new PulumiScaleError(
        'PS_OUT_OF_BOUNDS',
        `"to": ${body.to} is outside [${target.min}, ${target.max}] of target ${req.params.name}`,
        { details: { min: target.min, max: target.max } },
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
    const pending = await deps.engine.submit(intent);
    return reply.status(202).send({ accepted: true, intent, pending: { intent: pending.intent, count: pending.count } });
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

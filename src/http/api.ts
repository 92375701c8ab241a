/**
 * The management API: target state, manual scaling and history. Manual `to` values outside a
 * target's bounds are refused (422) rather than clamped: an operator asked for that exact
 * number, as AWS refuses a desired capacity outside the group's bounds.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { boundsAt, timeline } from '../schedule/index.js';
import { PulumiScaleError } from '../errors.js';
import { requireCredentials } from './auth.js';
import type { AppDeps, ClusterView } from './deps.js';
import { known, pause, refuseWhileDraining, resume, scale } from './operator.js';
import { parseScenario, ScenarioError } from '../simulate/input.js';
import { parseWith } from '../sources/common.js';
import { simulate, SimulationTooLargeError } from '../simulate/simulate.js';

/** An optional reason; a blank one counts as none (the default reason is used, not an empty one). */
const reason = z
  .string()
  .max(500)
  .optional()
  .transform((r) => (r === undefined || r.trim() === '' ? undefined : r));

const scaleBody = z
  .strictObject({
    to: z.number().int().nonnegative().optional(),
    by: z.number().int().refine((n) => n !== 0, 'must not be 0').optional(),
    action: z.enum(['up', 'down']).optional(),
    /** Several keys of a composite target at once (the driving key required), one `up`. */
    values: z.record(z.string().min(1).max(200), z.number().int().nonnegative()).optional(),
    dryRun: z.boolean().optional(),
    reason,
  })
  .refine((b) => [b.to, b.by, b.action, b.values].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of "to", "by", "action" or "values"',
  });

const pauseBody = z.strictObject({
  for: z.string().min(1).max(40),
  direction: z.enum(['both', 'up', 'down']).default('both'),
  reason,
});

const timelineQuery = z.strictObject({ hours: z.coerce.number().int().min(1).max(24 * 31).default(48) });

const approvalsQuery = z.strictObject({
  status: z.enum(['pending', 'approved', 'rejected', 'expired', 'applied', 'superseded']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** A GET route's query string, validated: a problem names the query string, not the body. */
const queryOf = <S extends z.ZodType>(schema: S, query: unknown): z.output<S> => parseWith(schema, query ?? {}, 'the query string');

/**
 * The routes that change something take their options in the body only: a query string there
 * is refused, since one that was ignored could turn `?dryRun=true` into a real change.
 */
function noQuery(query: unknown): void {
  const keys = typeof query === 'object' && query !== null ? Object.keys(query) : [];
  if (keys.length === 0) return;
  throw new PulumiScaleError('PS_PAYLOAD_INVALID', `this route takes no query string (got ${keys.map((k) => `"${k.slice(0, 40)}"`).join(', ')}); its options go in the JSON body`, {
    details: keys.map((k) => ({ path: k.slice(0, 40), message: 'not an option of this route', code: 'unrecognized_keys' })),
  });
}

/** The API's tokens name no one: a verdict through the API is recorded as the API's. */
const API_ACTOR = { via: 'api', id: 'api', name: 'api' } as const;

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
  const now = deps.now ?? Date.now;

  app.get('/api/v1/targets', async () => deps.engine.states());

  // Without a cluster (an app built for tests): a daemon alone, holding its stacks without leases.
  const startedAt = new Date(now()).toISOString();
  app.get('/api/v1/cluster', async (): Promise<ClusterView> => {
    if (deps.cluster !== undefined) return deps.cluster.view();
    return { self: 'local', replicas: [{ id: 'local', lastSeen: new Date(now()).toISOString(), startedAt, draining: deps.engine.isDraining() }], leases: [] };
  });

  app.get<{ Params: { name: string } }>('/api/v1/targets/:name', async (req) => {
    const state = await deps.engine.state(req.params.name);
    if (!state) throw new PulumiScaleError('PS_TARGET_UNKNOWN', `no target named "${req.params.name}"`);
    return state;
  });

  app.post<{ Params: { name: string } }>('/api/v1/targets/:name/scale', async (req, reply) => {
    noQuery(req.query);
    refuseWhileDraining(deps);
    known(deps, req.params.name);
    const body = scaleBody.parse(req.body ?? {});
    const { intent, queued } = await scale(deps, req.params.name, body, { source: 'api' });
    // `pending` says where the command stands: the next to run, and how many are queued.
    const state = await deps.engine.state(req.params.name);
    return reply.status(202).send({ accepted: true, intent, pending: { intent: state?.pending ?? intent, count: queued } });
  });

  app.post<{ Params: { name: string } }>('/api/v1/targets/:name/pause', async (req, reply) => {
    noQuery(req.query);
    refuseWhileDraining(deps);
    known(deps, req.params.name);
    const body = pauseBody.parse(req.body ?? {});
    return reply.status(200).send(await pause(deps, req.params.name, { for: body.for, direction: body.direction, reason: body.reason ?? 'paused through the API' }));
  });

  app.get<{ Params: { name: string } }>('/api/v1/targets/:name/timeline', async (req) => {
    const target = deps.config.targets[known(deps, req.params.name)] as (typeof deps.config.targets)[string];
    const { hours } = queryOf(timelineQuery, req.query);
    const from = now();
    // Each change with the bounds in effect just after it, in UTC and in the schedule's zone.
    return timeline(target.schedules, from, hours).map((entry) => ({
      ...entry,
      bounds: boundsAt(target, Date.parse(entry.at) + 1),
    }));
  });

  app.post<{ Params: { name: string } }>('/api/v1/targets/:name/resume', async (req, reply) => {
    noQuery(req.query);
    return reply.status(200).send(await resume(deps, req.params.name));
  });

  // The simulator over HTTP: the same timeline as `pulumiscale simulate --input`, plus
  // "opSeconds"; nothing is stored, nothing touches a stack.
  app.post<{ Params: { name: string } }>('/api/v1/targets/:name/simulate', async (req) => {
    noQuery(req.query);
    const name = known(deps, req.params.name);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const { opSeconds, ...timeline } = typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {};
    if (opSeconds !== undefined && (typeof opSeconds !== 'number' || !Number.isFinite(opSeconds) || opSeconds < 0 || opSeconds > 86_400)) {
      throw new PulumiScaleError('PS_PAYLOAD_INVALID', '"opSeconds" must be a number of seconds from 0 to 86400', { details: [{ path: 'opSeconds', message: 'not a number of seconds', code: 'custom' }] });
    }
    let scenario;
    try {
      scenario = parseScenario(timeline);
    } catch (err) {
      if (!(err instanceof ScenarioError)) throw err;
      throw new PulumiScaleError('PS_PAYLOAD_INVALID', `the timeline has ${err.problems.length} problem(s)`, { details: err.problems.map((p) => ({ ...p, code: 'custom' })) });
    }
    const target = { ...(deps.config.targets[name] as (typeof deps.config.targets)[string]), name, stackKey: name };
    try {
      return simulate(target, scenario, { opMs: Math.round((opSeconds ?? 0) * 1000), evaluationInterval: deps.config.engine.evaluationInterval });
    } catch (err) {
      if (!(err instanceof SimulationTooLargeError)) throw err;
      throw new PulumiScaleError('PS_SIMULATION_TOO_LARGE', err.message);
    }
  });

  const stream = deps.stream;
  if (stream !== undefined) {
    // Server-Sent Events: the raw response is the stream's from here on (see stream.ts).
    app.get('/api/v1/stream', (req, reply) => {
      const last = req.headers['last-event-id'];
      reply.hijack();
      stream.open(reply.raw, Array.isArray(last) ? last[0] : last);
    });
  }

  app.get('/api/v1/approvals', async (req) => {
    const q = queryOf(approvalsQuery, req.query);
    return deps.store.listApprovals({ limit: q.limit, ...(q.status ? { status: q.status } : {}) });
  });

  app.get<{ Params: { id: string } }>('/api/v1/approvals/:id', async (req) => {
    const found = await deps.store.getApproval(req.params.id);
    if (found === null) throw new PulumiScaleError('PS_APPROVAL_UNKNOWN', `no approval with id "${req.params.id.slice(0, 80)}"`);
    return found;
  });

  for (const verdict of ['approve', 'reject'] as const) {
    app.post<{ Params: { id: string } }>(`/api/v1/approvals/:id/${verdict}`, async (req) => {
      noQuery(req.query);
      refuseWhileDraining(deps);
      return deps.engine.decideApproval(req.params.id, verdict, API_ACTOR);
    });
  }

  app.get('/api/v1/events', async (req) => {
    const q = queryOf(eventsQuery, req.query);
    return deps.store.listEvents({
      limit: q.limit,
      ...(q.target ? { target: q.target } : {}),
      ...(q.before ? { before: q.before } : {}),
    });
  });
}

/**
 * The one error handler: every refusal leaves as `{ "error": { "code", "message", "details"? } }`
 * with the status registered for its code in `errors.ts`, and is counted by route and code.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ZodError } from 'zod';
import { ERROR_CODES, PulumiScaleError, type ErrorCode } from '../errors.js';
import type { Metrics } from '../observe/metrics.js';

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

/** Maps Fastify's own errors (body parsing, limits) to registry codes. */
function fromFastify(err: FastifyError): PulumiScaleError | null {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PulumiScaleError('PS_PAYLOAD_TOO_LARGE', 'the request body is larger than server.bodyLimit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new PulumiScaleError('PS_PAYLOAD_INVALID', 'the request body could not be read; send JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new PulumiScaleError('PS_PAYLOAD_INVALID', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new PulumiScaleError('PS_PAYLOAD_INVALID', `the request body is not valid JSON: ${err.message}`);
    default:
      if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
        return new PulumiScaleError('PS_PAYLOAD_INVALID', `the request body is not valid JSON: ${err.message}`);
      }
      return null;
  }
}

/** Converts anything thrown by a route (or by Fastify for it) into a registry error. */
export function fromRouteError(err: unknown): PulumiScaleError {
  if (err instanceof PulumiScaleError) return err;
  if (err instanceof ZodError) {
    return new PulumiScaleError('PS_PAYLOAD_INVALID', 'the request body does not have the expected shape', {
      details: err.issues.map((i) => ({ path: i.path.join('.'), message: i.message, code: i.code })),
    });
  }
  const mapped = err instanceof Error ? fromFastify(err as FastifyError) : null;
  if (mapped) return mapped;
  return new PulumiScaleError('PS_INTERNAL', 'internal error', { cause: err });
}

/** Answers a refusal in the one shape, counted by route and code. */
function refusalSender(metrics: Metrics) {
  return (req: FastifyRequest, reply: FastifyReply, e: PulumiScaleError) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.refused.inc({ route, code: e.code });
    // A drain's 503 is the daemon working as meant (senders retry elsewhere or later): a refusal
    // like the others, not an error with its stack on every request while it drains.
    if (e.code === 'PS_INTERNAL' || (ERROR_CODES[e.code].status >= 500 && e.code !== 'PS_DRAINING')) {
      req.log.error({ err: e.cause ?? e, code: e.code }, e.message);
    } else {
      req.log.info({ code: e.code, reason: e.message }, 'request refused');
    }
    // A route that takes only basic credentials set its own challenge (see auth.ts credentialsHook).
    if (e.code === 'PS_UNAUTHORIZED' && !reply.hasHeader('www-authenticate')) void reply.header('www-authenticate', 'Bearer');
    if (e.code === 'PS_DRAINING' || e.code === 'PS_STORE_UNAVAILABLE') void reply.header('retry-after', '5');
    const body: ErrorBody = { error: { code: e.code, message: e.message } };
    if (e.details !== undefined) body.error.details = e.details;
    return reply.status(e.status).send(body);
  };
}

/**
 * The handler of the errors the router raises before any route or hook runs (Fastify's
 * `frameworkErrors` option, set when the app is made): a URL that does not decode, a route
 * parameter over the router's 100 characters. They leave in the one shape too.
 */
export function frameworkErrorHandler(metrics: Metrics): (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => void {
  const send = refusalSender(metrics);
  return (err, req, reply) => {
    const e =
      err.code === 'FST_ERR_BAD_URL'
        ? new PulumiScaleError('PS_URL_INVALID', 'the URL could not be decoded (a stray or malformed %-escape)')
        : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? new PulumiScaleError('PS_URL_INVALID', 'a name in the URL path (a target, an approval id) is longer than 100 characters')
          : fromRouteError(err);
    void send(req, reply, e);
  };
}

/** Installs the error and not-found handlers on an app. */
export function installErrorHandling(app: FastifyInstance, metrics: Metrics): void {
  const send = refusalSender(metrics);
  app.setErrorHandler((err, req, reply) => send(req, reply, fromRouteError(err)));
  app.setNotFoundHandler((req, reply) =>
    send(req, reply, new PulumiScaleError('PS_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`)),
  );
}

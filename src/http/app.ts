/**
 * Builds the Fastify app: probes, metrics, the API, the webhooks and the chat routes, with one
 * error handler.
 * The app holds no state of its own; everything lives in the engine and the store.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { PulumiScaleError } from '../errors.js';
import { registerApiRoutes } from './api.js';
import { registerChatRoutes } from './chatops.js';
import { registerPageRoutes } from './page.js';
import type { AppDeps } from './deps.js';
import { frameworkErrorHandler, installErrorHandling } from './error-handler.js';
import { registerWebhookRoutes } from './webhooks.js';

export type { AppDeps } from './deps.js';

/** Creates the app; the caller listens (or uses `app.inject()` in tests). */
export function buildApp(deps: AppDeps): FastifyInstance {
  // pino's Logger is a FastifyBaseLogger; naming the base type keeps FastifyInstance's default generics.
  const loggerInstance: FastifyBaseLogger = deps.logger;
  const app = Fastify({
    loggerInstance,
    bodyLimit: deps.config.server.bodyLimit,
    // Requests are not logged one by one; refusals and decisions are, with their reasons.
    logController: new LogController({ disableRequestLogging: true }),
    // SNS retries and Alertmanager re-sends identify themselves by payload, not by connection.
    requestIdHeader: 'x-request-id',
    // A drain closes the server after the engine is done: a browser's pooled keep-alive socket
    // (the status page) must not hold the exit for minutes.
    forceCloseConnections: true,
    // The router's own refusals (a URL that does not decode) in the one error shape.
    frameworkErrors: frameworkErrorHandler(deps.metrics),
  });
  installErrorHandling(app, deps.metrics);
  // Every body this daemon takes is JSON. SNS labels it text/plain and a bare `curl -d` labels
  // it a form, so whatever the label, the body is parsed as JSON here, once, for every route.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new PulumiScaleError('PS_PAYLOAD_INVALID', `the request body is not valid JSON: ${(err as Error).message}`, { cause: err }));
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (deps.engine.isDraining()) return reply.status(503).send({ status: 'draining' });
    return { status: 'ready' };
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(text);
  });

  registerApiRoutes(app, deps);
  registerWebhookRoutes(app, deps);
  registerChatRoutes(app, deps);
  registerPageRoutes(app);
  // Open streams hold their sockets: ended first, so that closing the server does not wait on them.
  app.addHook('preClose', async () => deps.stream?.close());
  return app;
}

/**
 * The baseline of the intake figures: a bare Fastify route at the daemon's webhook path that
 * parses the same JSON body (Fastify's own parser, the same body limit) and answers 202 with a
 * reply of the daemon's shape, storing nothing. What a Node.js HTTP server on this machine can
 * do at all; the daemon is measured as a share of it.
 *
 *   node --import tsx bench/baseline-server.ts PORT BODY_LIMIT
 */
import Fastify from 'fastify';

const port = Number(process.argv[2]);
const bodyLimit = Number(process.argv[3] ?? 1024 * 1024);
const app = Fastify({ logger: false, bodyLimit });

app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/webhooks/alertmanager', async (req, reply) => {
  const alerts = (req.body as { alerts?: unknown[] } | undefined)?.alerts ?? [];
  return reply.status(202).send({ accepted: alerts.length, ignored: 0, rejected: [] });
});

await app.listen({ host: '127.0.0.1', port });
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void app.close().then(() => process.exit(0)));

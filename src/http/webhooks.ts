/**
 * Webhook routes: Alertmanager, and CloudWatch through an SNS HTTPS subscription. Routes stay
 * thin: check the sender, parse, let a source in `sources/` translate, then store what it made.
 * For SNS the route only sequences: verify the signature, apply the protocol rules of
 * `sources/sns-rules.ts`, remember the delivery id, store the result.
 *
 * Status codes steer the senders' retries: 2xx only once every intent is stored ("acknowledged
 * means durable"), 4xx for what a retry cannot fix (neither SNS nor Alertmanager retries those),
 * 5xx when the store or a certificate fetch fails, so that they send again.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PulumiScaleError } from '../errors.js';
import { fromAlertmanager, parseAlertmanagerPayload } from '../sources/alertmanager.js';
import { fromCloudWatch, parseCloudWatchAlarm, parseCloudWatchAlarmText, type CloudWatchResult } from '../sources/cloudwatch.js';
import { parseWebhookQuery, type SourceContext, type SourceResult } from '../sources/common.js';
import {
  checkFreshness,
  checkRawDelivery,
  checkTopic,
  confirmationDecision,
  deliveryRecord,
  replayedError,
} from '../sources/sns-rules.js';
import { createCertCache, isSnsEnvelope, parseSnsMessage, verifySnsSignature, type SnsConfirmation, type SnsNotification } from '../sources/sns.js';
import { credentialsHook } from './auth.js';
import type { AppDeps } from './deps.js';
import { createHttpsCertFetcher, createHttpsSubscriptionConfirmer } from './sns-client.js';

/** The answer to an accepted webhook delivery. */
export interface WebhookReply {
  /** Intents stored. */
  accepted: number;
  /** Alerts that start nothing (resolved, OK), recorded as `ignored` events. */
  ignored: number;
  /** Alerts refused while others of the same delivery were accepted. */
  rejected: { fingerprint: string; code: string; message: string }[];
}

/** Registers `POST /webhooks/alertmanager` and `POST /webhooks/cloudwatch`. */
export function registerWebhookRoutes(app: FastifyInstance, deps: AppDeps): void {
  const now = deps.now ?? Date.now;
  const ctx: SourceContext = { targets: deps.config.targets, newId: deps.newId ?? randomUUID, now };
  // One cache per app, so its bound on certificate fetches in flight holds for the whole daemon.
  const fetchCert = createCertCache(deps.sns?.fetchCert ?? createHttpsCertFetcher());
  const confirmSubscription = deps.sns?.confirmSubscription ?? createHttpsSubscriptionConfirmer();

  // Refused before the body is read: a draining daemon takes no new work, and the 503 (with
  // Retry-After) sends the alert to another replica or back later.
  const notDraining = async () => {
    if (deps.engine.isDraining()) throw new PulumiScaleError('PS_DRAINING', 'the daemon is draining; retry on another replica or later');
  };

  /** Stores what a source made: events first, so a store outage fails before any intent. */
  const storeResult = async (log: FastifyBaseLogger, result: SourceResult): Promise<WebhookReply> => {
    for (const event of result.ignored) {
      await deps.engine.record(event);
      const fields = { target: event.target, source: event.source, reason: event.reason, evidence: event.evidence };
      // Only a rejection carries an error code (see sources/common.ts ignoredEvent).
      if (event.errorCode !== undefined) log.warn({ ...fields, code: event.errorCode }, 'alert refused');
      else log.info(fields, 'alert ignored');
    }
    for (const intent of result.intents) {
      const pending = await deps.engine.submit(intent);
      log.info(
        { target: intent.target, source: intent.source, intentId: intent.id, adjustment: intent.adjustment, dryRun: intent.dryRun, pendingCount: pending.count },
        'intent accepted',
      );
    }
    return { accepted: result.intents.length, ignored: result.ignored.length - result.rejected.length, rejected: result.rejected };
  };

  app.post(
    '/webhooks/alertmanager',
    {
      onRequest: [credentialsHook(deps.config.webhooks.alertmanager), notDraining],
    },
    async (req, reply) => {
      const query = parseWebhookQuery(req.query, ctx);
      const payload = parseAlertmanagerPayload(requiredBody(req.body, 'the Alertmanager notification'));
      const result = fromAlertmanager(payload, query, ctx);
      const body = await storeResult(req.log, result);
      req.log.info({ receiver: payload.receiver, groupKey: payload.groupKey, alerts: payload.alerts.length, ...body }, 'alertmanager notification');
      return reply.status(202).send(body);
    },
  );

  // SNS sends basic credentials only after a 401 that asks for them, which credentialsHook sets.
  app.post('/webhooks/cloudwatch', { onRequest: [credentialsHook(deps.config.webhooks.cloudwatch), notDraining] }, async (req, reply) => {
    const cw = deps.config.webhooks.cloudwatch;
    const body = requiredBody(req.body, 'the SNS delivery');

    if (!isSnsEnvelope(body)) {
      checkRawDelivery(cw);
      const alarm = parseCloudWatchAlarm(body);
      const query = parseWebhookQuery(req.query, ctx);
      return reply.status(202).send(await storeResult(req.log, asSourceResult(fromCloudWatch(alarm, query, ctx))));
    }

    const msg = parseSnsMessage(body);
    // Signature first, then the topic: SNS signs every topic's messages, including an
    // attacker's own topic, so a valid signature alone proves nothing about who sent it.
    if (cw.verifySignature) await verifySnsSignature(msg, fetchCert);
    checkTopic(msg, cw);
    const log = req.log.child({ messageId: msg.MessageId, topicArn: msg.TopicArn, type: msg.Type });

    switch (msg.Type) {
      case 'SubscriptionConfirmation':
        return confirm(log, reply, msg);
      case 'UnsubscribeConfirmation':
        log.warn('SNS says this endpoint was unsubscribed from the topic');
        return reply.status(200).send({ type: msg.Type, acknowledged: true });
      case 'Notification':
        return notification(req, log, reply, msg);
    }
  });

  async function confirm(log: FastifyBaseLogger, reply: FastifyReply, msg: SnsConfirmation) {
    const decision = confirmationDecision(msg, deps.config.webhooks.cloudwatch);
    if (decision.action === 'await') {
      log.warn({ subscribeURL: decision.url.href }, 'SNS subscription awaits confirmation: open SubscribeURL, or set webhooks.cloudwatch.autoConfirm');
      return reply.status(200).send({ type: msg.Type, confirmed: false });
    }
    try {
      await confirmSubscription(decision.url.href);
    } catch (err) {
      throw new PulumiScaleError('PS_SNS_CONFIRM_FAILED', `GET SubscribeURL failed: ${(err as Error).message}`, { cause: err });
    }
    log.info('SNS subscription confirmed');
    return reply.status(200).send({ type: msg.Type, confirmed: true });
  }

  async function notification(req: FastifyRequest, log: FastifyBaseLogger, reply: FastifyReply, msg: SnsNotification) {
    const cw = deps.config.webhooks.cloudwatch;
    const query = parseWebhookQuery(req.query, ctx);
    const result = asSourceResult(fromCloudWatch(parseCloudWatchAlarmText(msg.Message), query, ctx, { messageId: msg.MessageId }));

    const at = now();
    checkFreshness(msg, at, cw.replayWindow);
    const { key, expiresAt } = deliveryRecord(msg, at, cw.replayWindow);
    if (!(await deps.store.rememberDelivery(key, expiresAt))) throw replayedError(msg);
    try {
      return reply.status(202).send(await storeResult(log, result));
    } catch (err) {
      // Not accepted after all: forget the id so that SNS's retry of this message gets through.
      await deps.store.forgetDelivery(key).catch((e: unknown) => log.error({ err: e }, 'could not forget an SNS delivery id'));
      throw err;
    }
  }
}

/** The body, already parsed as JSON by the app (whatever its content type); it must be there. */
function requiredBody(body: unknown, what: string): unknown {
  if (body === undefined || body === null) throw new PulumiScaleError('PS_PAYLOAD_INVALID', `${what} is empty`);
  return body;
}

function asSourceResult(r: CloudWatchResult): SourceResult {
  return r.kind === 'intent' ? { intents: [r.intent], ignored: [], rejected: [] } : { intents: [], ignored: [r.event], rejected: [] };
}

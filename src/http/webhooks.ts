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
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify';
import { pino } from 'pino';
import { PulumiScaleError } from '../errors.js';
import {
  finishTranslation,
  fromAlertmanager,
  parseAlertmanagerPayload,
  parseAlertmanagerSlice,
  startTranslation,
  translateAlerts,
} from '../sources/alertmanager.js';
import { fromCloudWatch, parseCloudWatchAlarm, parseCloudWatchAlarmText } from '../sources/cloudwatch.js';
import { parseWebhookQuery, type SourceContext, type SourceResult, type WebhookQuery } from '../sources/common.js';
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
  /** Firing alerts stored: signals started or refreshed, and (dry run) preview commands queued. */
  accepted: number;
  /** Alerts that start nothing (resolved, OK), recorded as `ignored` events. */
  ignored: number;
  /** Alerts refused while others of the same delivery were accepted. */
  rejected: { fingerprint: string; code: string; message: string }[];
}

/** Registers `POST /webhooks/alertmanager` and `POST /webhooks/cloudwatch`. */
export function registerWebhookRoutes(app: FastifyInstance, deps: AppDeps): void {
  const now = deps.now ?? Date.now;
  const base = { targets: deps.config.targets, newId: deps.newId ?? randomUUID, now };
  const amCtx: SourceContext = { ...base, signalTTL: deps.config.webhooks.alertmanager.signalTTL };
  const cwCtx: SourceContext = { ...base, signalTTL: deps.config.webhooks.cloudwatch.signalTTL };
  // One cache per app, so its bound on certificate fetches in flight holds for the whole daemon.
  const fetchCert = createCertCache(deps.sns?.fetchCert ?? createHttpsCertFetcher());
  const confirmSubscription = deps.sns?.confirmSubscription ?? createHttpsSubscriptionConfirmer();

  // Refused before the body is read: a draining daemon takes no new work, and the 503 (with
  // Retry-After) sends the alert to another replica or back later.
  const notDraining = async () => {
    if (deps.engine.isDraining()) throw new PulumiScaleError('PS_DRAINING', 'the daemon is draining; retry on another replica or later');
  };

  /**
   * Stores what a source made: the delivery's signal changes and events in one write, then its
   * preview commands; a store outage fails the request (503) so the sender delivers it again.
   */
  const storeResult = async (log: FastifyBaseLogger, result: SourceResult): Promise<WebhookReply> => {
    await deps.engine.signals({ upsert: result.signals, end: result.ended, events: result.ignored });
    // Checked first: under a flood, the fields of lines that would not be written cost every request.
    const info = writesInfo(log);
    for (const event of result.ignored) {
      const fields = { target: event.target, source: event.source, reason: event.reason, evidence: event.evidence };
      // Only a rejection carries an error code (see sources/common.ts ignoredEvent).
      if (event.errorCode !== undefined) log.warn({ ...fields, code: event.errorCode }, 'alert refused');
      else if (info) log.info(fields, 'alert resolved or ignored');
    }
    if (info) for (const s of result.signals) log.info({ target: s.target, source: s.source, signal: s.id, direction: s.direction, value: s.value }, 'signal active');
    for (const command of result.commands) {
      await deps.engine.command(command);
      if (info) log.info({ target: command.target, source: command.source, intentId: command.id, adjustment: command.adjustment }, 'preview queued');
    }
    return {
      accepted: result.signals.length + result.commands.length,
      ignored: result.ignored.length - result.rejected.length,
      rejected: result.rejected,
    };
  };

  app.post(
    '/webhooks/alertmanager',
    {
      onRequest: [credentialsHook(deps.config.webhooks.alertmanager), notDraining],
    },
    async (req, reply) => {
      const query = parseWebhookQuery(req.query, amCtx);
      const raw = requiredBody(req.body, 'the Alertmanager notification');
      const alerts = (raw as { alerts?: unknown }).alerts;
      // A notification of thousands of alerts is validated and translated a slice at a time, in
      // turns of the event loop of their own, so that /healthz and other deliveries are answered
      // in between (the store writes it in slices too).
      const result =
        Array.isArray(alerts) && alerts.length > SLICE_ALERTS ? await translateInSlices(raw, alerts.length, query) : fromAlertmanager(parseAlertmanagerPayload(raw), query, amCtx);
      const body = await storeResult(req.log, result);
      if (writesInfo(req.log)) {
        const group = raw as { receiver?: unknown; groupKey?: unknown };
        req.log.info({ receiver: group.receiver, groupKey: group.groupKey, alerts: Array.isArray(alerts) ? alerts.length : 0, ...body }, 'alertmanager notification');
      }
      return reply.status(202).send(body);
    },
  );

  async function translateInSlices(raw: unknown, count: number, query: WebhookQuery): Promise<SourceResult> {
    const translation = startTranslation();
    for (let from = 0; from < count; from += SLICE_ALERTS) {
      translateAlerts(parseAlertmanagerSlice(raw, from, from + SLICE_ALERTS), from, query, amCtx, translation);
      await nextTurn();
    }
    return finishTranslation(translation);
  }

  // SNS sends basic credentials only after a 401 that asks for them, which credentialsHook sets.
  app.post('/webhooks/cloudwatch', { onRequest: [credentialsHook(deps.config.webhooks.cloudwatch), notDraining] }, async (req, reply) => {
    const cw = deps.config.webhooks.cloudwatch;
    // First, whatever the message: a subscription confirmed on a URL whose query every
    // notification would then fail (a key it does not take, an unknown target) would drop every
    // alarm it carries, and SNS does not retry a 4xx.
    const query = parseWebhookQuery(req.query, cwCtx);
    const body = requiredBody(req.body, 'the SNS delivery');

    if (!isSnsEnvelope(body)) {
      checkRawDelivery(cw);
      const alarm = parseCloudWatchAlarm(body);
      return reply.status(202).send(await storeResult(req.log, fromCloudWatch(alarm, query, cwCtx)));
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
        return notification(query, log, reply, msg);
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

  async function notification(query: WebhookQuery, log: FastifyBaseLogger, reply: FastifyReply, msg: SnsNotification) {
    const cw = deps.config.webhooks.cloudwatch;
    const result = fromCloudWatch(parseCloudWatchAlarmText(msg.Message), query, cwCtx, { messageId: msg.MessageId });

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

/** Alerts validated and translated per turn of the event loop, in a large notification (about 10 ms of work). */
const SLICE_ALERTS = 1000;

/** Whether `log` writes info lines (a route's logger may have a level of its own). */
function writesInfo(log: FastifyBaseLogger): boolean {
  if (log.level === 'silent') return false;
  // A level pino does not know counts as writing: the line is built, and pino decides.
  return (pino.levels.values[log.level] ?? 0) <= (pino.levels.values.info ?? 0);
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The body, already parsed as JSON by the app (whatever its content type); it must be there. */
function requiredBody(body: unknown, what: string): unknown {
  if (body === undefined || body === null) throw new PulumiScaleError('PS_PAYLOAD_INVALID', `${what} is empty`);
  return body;
}

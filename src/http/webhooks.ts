/**
 * Webhook routes (Alertmanager, CloudWatch through SNS). Being written: see issue 3.
 */
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from './deps.js';

/** Registers `POST /webhooks/alertmanager` and `POST /webhooks/cloudwatch`. */
export function registerWebhookRoutes(_app: FastifyInstance, _deps: AppDeps): void {}

/**
 * Credential checks for the API and the webhooks. Comparisons hash both sides
 * first so that `timingSafeEqual` sees equal lengths and the time taken says nothing about how
 * much of a token matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { PulumiScaleError } from '../errors.js';

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time equality of two secrets. */
export function secretEquals(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** True when `given` equals any of `allowed`, checking every one (no early exit). */
export function matchesAny(given: string, allowed: readonly string[]): boolean {
  let ok = false;
  for (const candidate of allowed) ok = secretEquals(given, candidate) || ok;
  return ok;
}

/** The credentials a route accepts; empty (or absent) lists mean the route is open. */
export interface Credentials {
  /** Accepted `Authorization: Bearer` tokens. */
  bearerTokens?: readonly string[];
  /** Accepted `Authorization: Basic` user and password pairs. */
  basicAuth?: readonly { username: string; password: string }[];
}

/**
 * The `WWW-Authenticate` challenge of a route taking `creds`: Bearer when it takes tokens, else
 * Basic with a realm. Some senders only send basic credentials after such a challenge: SNS
 * posts without them first and retries with the subscription URL's `user:pass@` on a 401 that
 * asks for Basic.
 */
export function challengeFor(creds: Credentials): string {
  return (creds.bearerTokens ?? []).length > 0 ? 'Bearer' : 'Basic realm="pulumiscale"';
}

/**
 * An `onRequest` hook running {@link requireCredentials} before the body is read; a refusal
 * carries the route's {@link challengeFor} (the error handler keeps a challenge already set).
 */
export function credentialsHook(creds: Credentials): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (req, reply) => {
    try {
      requireCredentials(req, creds);
    } catch (err) {
      void reply.header('www-authenticate', challengeFor(creds));
      throw err;
    }
  };
}

/**
 * Throws PS_UNAUTHORIZED unless the request carries one of the credentials. A route with no
 * credentials configured is open (the embedded demo binds to localhost).
 */
export function requireCredentials(req: FastifyRequest, creds: Credentials): void {
  const bearer = creds.bearerTokens ?? [];
  const basic = creds.basicAuth ?? [];
  if (bearer.length === 0 && basic.length === 0) return;
  const header = req.headers.authorization ?? '';
  const space = header.indexOf(' ');
  const scheme = space > 0 ? header.slice(0, space).toLowerCase() : '';
  const value = space > 0 ? header.slice(space + 1).trim() : '';
  if (scheme === 'bearer' && bearer.length > 0 && matchesAny(value, bearer)) return;
  if (scheme === 'basic' && basic.length > 0) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      const user = decoded.slice(0, colon);
      const pass = decoded.slice(colon + 1);
      let ok = false;
      for (const b of basic) {
        // Both compared every time: a short-circuit would tell by timing whether the user matched.
        const userOk = secretEquals(user, b.username);
        const passOk = secretEquals(pass, b.password);
        ok = (userOk && passOk) || ok;
      }
      if (ok) return;
    }
  }
  throw new PulumiScaleError(
    'PS_UNAUTHORIZED',
    header
      ? 'the credentials given are not accepted'
      : `this route needs credentials: Authorization: ${bearer.length > 0 ? 'Bearer <token>' : 'Basic <user:password>'}`,
  );
}

/** An open route, and what anyone who reaches it can do. */
export interface OpenRoute {
  route: string;
  /** What the route lets anyone do, for the warning. */
  risk: string;
}

/**
 * The routes that take no credentials under `config`: the API without bearer tokens, the
 * Alertmanager webhook without tokens or basic credentials, and the CloudWatch webhook when it
 * verifies no SNS signature and takes no basic credentials (a verified signature from a listed
 * topic is a credential of its own).
 */
export function openRoutes(config: Pick<Config, 'api' | 'webhooks'>): OpenRoute[] {
  const open: OpenRoute[] = [];
  if (config.api.bearerTokens.length === 0) {
    open.push({ route: '/api/v1/*', risk: 'anyone who reaches it can read every target and scale any of them' });
  }
  const am = config.webhooks.alertmanager;
  if (am.bearerTokens.length === 0 && am.basicAuth.length === 0) {
    open.push({ route: '/webhooks/alertmanager', risk: 'anyone who reaches it can post alerts that scale targets' });
  }
  const cw = config.webhooks.cloudwatch;
  if (!cw.verifySignature && cw.basicAuth.length === 0) {
    open.push({ route: '/webhooks/cloudwatch', risk: 'anyone who reaches it can post alarms that scale targets' });
  }
  return open;
}

/** Whether a listen address is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

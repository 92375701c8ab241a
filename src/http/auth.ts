/**
 * Credential checks for the API and the Alertmanager webhook. Comparisons hash both sides
 * first so that `timingSafeEqual` sees equal lengths and the time taken says nothing about how
 * much of a token matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
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

/** The credentials a route accepts; empty lists mean the route is open. */
export interface Credentials {
  bearerTokens: readonly string[];
  basicAuth?: readonly { username: string; password: string }[];
}

/**
 * Throws PS_UNAUTHORIZED unless the request carries one of the credentials. A route with no
 * credentials configured is open (the embedded demo binds to localhost).
 */
export function requireCredentials(req: FastifyRequest, creds: Credentials): void {
  const basic = creds.basicAuth ?? [];
  if (creds.bearerTokens.length === 0 && basic.length === 0) return;
  const header = req.headers.authorization ?? '';
  const space = header.indexOf(' ');
  const scheme = space > 0 ? header.slice(0, space).toLowerCase() : '';
  const value = space > 0 ? header.slice(space + 1).trim() : '';
  if (scheme === 'bearer' && creds.bearerTokens.length > 0 && matchesAny(value, creds.bearerTokens)) return;
  if (scheme === 'basic' && basic.length > 0) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      const user = decoded.slice(0, colon);
      const pass = decoded.slice(colon + 1);
      let ok = false;
      for (const b of basic) ok = (secretEquals(user, b.username) && secretEquals(pass, b.password)) || ok;
      if (ok) return;
    }
  }
  throw new PulumiScaleError(
    'PS_UNAUTHORIZED',
    header ? 'the credentials given are not accepted' : 'this route needs credentials: Authorization: Bearer <token>',
  );
}

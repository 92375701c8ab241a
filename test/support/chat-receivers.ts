/**
 * Local stand-ins for the chat platforms' webhooks, for tests: a real HTTP server per receiver
 * that checks each request against the platform's documented shape and limits and answers as the
 * platform does (400 for a bad payload, scripted 429s and failures, then the platform's success).
 *
 * The checkers restate the documented limits instead of importing the formatters' constants: a
 * formatter with a wrong limit must fail here, not agree with itself. Lengths are counted in
 * UTF-16 code units, the stricter reading of "characters" (never fewer than code points), and a
 * broken surrogate pair is a problem on its own.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DestinationType } from '../../src/notify/formats/index.js';

/** One request a receiver got. */
export interface ReceivedRequest {
  /** When it arrived, epoch ms. */
  at: number;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, undefined when it was not JSON. */
  body: unknown;
  raw: string;
  /** The status the receiver answered with. */
  status: number;
}

/** What {@link startReceiver} takes. */
export interface ReceiverOptions {
  type: DestinationType;
  /** The webhook type's secret: requests must carry a valid signature. */
  secret?: string;
  /** Answers for the first good requests, in order (429 with `Retry-After` seconds when given). */
  script?: Array<{ status: number; retryAfter?: number }>;
}

/** A running receiver. */
export interface Receiver {
  /** Where to POST. */
  url: string;
  /** Every POST, good or bad, in arrival order. */
  received: ReceivedRequest[];
  /** What the checker found wrong, over all requests. */
  problems: string[];
  /** Resolves once `n` requests have arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A lone surrogate, i.e. half an emoji: with the u flag a whole pair is one code point and does not match. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Checks a string at `path`: present (unless optional), at most `max` long, at least `min`, whole code points. */
function str(p: string[], path: string, v: unknown, max: number, opts: { optional?: boolean; min?: number } = {}): v is string {
  if (v === undefined && opts.optional) return false;
  if (typeof v !== 'string') {
    p.push(`${path}: not a string`);
    return false;
  }
  if (v.length > max) p.push(`${path}: ${v.length} characters, over ${max}`);
  if (v.length < (opts.min ?? 0)) p.push(`${path}: shorter than ${opts.min ?? 0}`);
  if (LONE_SURROGATE.test(v)) p.push(`${path}: a broken surrogate pair`);
  return true;
}

/** Checks a list at `path`: an array of `min`..`max` items. */
function list(p: string[], path: string, v: unknown, min: number, max: number): v is unknown[] {
  if (!Array.isArray(v)) {
    p.push(`${path}: not a list`);
    return false;
  }
  if (v.length > max) p.push(`${path}: ${v.length} items, over ${max}`);
  if (v.length < min) p.push(`${path}: fewer than ${min} items`);
  return true;
}

/**
 * Slack mrkdwn must escape `&`, `<`, `>` outside links. Stricter than Slack (which renders a
 * mistake rather than refusing it): an unescaped `<!channel>` in user text is a formatter bug.
 */
function mrkdwnEscaped(p: string[], path: string, text: string): void {
  const outsideLinks = text.replace(/<(?:https?:\/\/|mailto:)[^<>\s|]+(?:\|[^<>]*)?>/g, '');
  if (/[<>]/.test(outsideLinks)) p.push(`${path}: unescaped < or > outside a link`);
  if (/&(?!amp;|lt;|gt;)/.test(text)) p.push(`${path}: unescaped &`);
}

function slackText(p: string[], path: string, v: unknown, max: number, types: string[] = ['plain_text', 'mrkdwn']): void {
  if (!isObject(v)) return void p.push(`${path}: not a text object`);
  if (typeof v.type !== 'string' || !types.includes(v.type)) p.push(`${path}.type: ${String(v.type)}, want ${types.join(' or ')}`);
  if (str(p, `${path}.text`, v.text, max, { min: 1 }) && v.type === 'mrkdwn') mrkdwnEscaped(p, `${path}.text`, v.text);
}

function slackBlock(p: string[], path: string, b: unknown, blockIds: Set<string>): void {
  if (!isObject(b)) return void p.push(`${path}: not an object`);
  if (str(p, `${path}.block_id`, b.block_id, 255, { optional: true })) {
    if (blockIds.has(b.block_id)) p.push(`${path}.block_id: ${b.block_id} used twice`);
    blockIds.add(b.block_id);
  }
  switch (b.type) {
    case 'header':
      return slackText(p, `${path}.text`, b.text, 150, ['plain_text']);
    case 'section':
      if (b.text === undefined && b.fields === undefined) p.push(`${path}: a section needs text or fields`);
      if (b.text !== undefined) slackText(p, `${path}.text`, b.text, 3000);
      if (b.fields !== undefined && list(p, `${path}.fields`, b.fields, 1, 10)) b.fields.forEach((f, i) => slackText(p, `${path}.fields[${i}]`, f, 2000));
      return;
    case 'context':
      if (list(p, `${path}.elements`, b.elements, 1, 10)) b.elements.forEach((e, i) => slackText(p, `${path}.elements[${i}]`, e, 3000));
      return;
    case 'actions': {
      if (!list(p, `${path}.elements`, b.elements, 1, 25)) return;
      const actionIds = new Set<string>();
      b.elements.forEach((e, i) => {
        const at = `${path}.elements[${i}]`;
        if (!isObject(e) || e.type !== 'button') return void p.push(`${at}: not a button`);
        slackText(p, `${at}.text`, e.text, 75, ['plain_text']);
        if (str(p, `${at}.action_id`, e.action_id, 255, { optional: true, min: 1 })) {
          if (actionIds.has(e.action_id)) p.push(`${at}.action_id: ${e.action_id} used twice in the block`);
          actionIds.add(e.action_id);
        }
        str(p, `${at}.value`, e.value, 2000, { optional: true });
        str(p, `${at}.url`, e.url, 3000, { optional: true });
        if (e.style !== undefined && e.style !== 'primary' && e.style !== 'danger') p.push(`${at}.style: ${JSON.stringify(e.style)}`);
      });
      return;
    }
    case 'divider':
      return;
    default:
      p.push(`${path}.type: ${String(b.type)} is not a block this checker knows`);
  }
}

/** Problems with a Slack incoming-webhook body (parsed JSON); empty when Slack would take it. */
export function checkSlack(body: unknown): string[] {
  const p: string[] = [];
  if (!isObject(body)) return ['body: not a JSON object'];
  if (body.text === undefined && body.blocks === undefined) p.push('body: neither text nor blocks');
  // Slack cuts `text` past 40,000 characters; the top-level text is mrkdwn unless mrkdwn: false.
  if (str(p, 'text', body.text, 40_000, { optional: true }) && body.mrkdwn !== false) mrkdwnEscaped(p, 'text', body.text);
  const ids = new Set<string>();
  if (body.blocks !== undefined && list(p, 'blocks', body.blocks, 0, 50)) body.blocks.forEach((b, i) => slackBlock(p, `blocks[${i}]`, b, ids));
  return p;
}

/** An absolute http(s) URL. */
function httpUrl(p: string[], path: string, v: unknown): void {
  if (typeof v !== 'string' || !URL.canParse(v) || !/^https?:$/.test(new URL(v).protocol)) p.push(`${path}: not an absolute http(s) URL`);
}

function teamsElement(p: string[], path: string, e: unknown): void {
  if (!isObject(e)) return void p.push(`${path}: not an object`);
  if (e.type === 'TextBlock') return void str(p, `${path}.text`, e.text, Infinity, { min: 1 });
  if (e.type === 'FactSet') {
    if (!list(p, `${path}.facts`, e.facts, 1, Infinity)) return;
    return e.facts.forEach((f, i) => {
      if (!isObject(f)) return void p.push(`${path}.facts[${i}]: not an object`);
      str(p, `${path}.facts[${i}].title`, f.title, Infinity);
      str(p, `${path}.facts[${i}].value`, f.value, Infinity);
    });
  }
  if (e.type !== 'Container') return void p.push(`${path}.type: ${String(e.type)} is not an element this checker knows`);
  if (list(p, `${path}.items`, e.items, 1, Infinity)) e.items.forEach((x, i) => teamsElement(p, `${path}.items[${i}]`, x));
}

/** Problems with a Teams Workflows webhook body (raw: its size is in bytes); empty when fine. */
export function checkTeams(raw: string): string[] {
  const p: string[] = [];
  const bytes = Buffer.byteLength(raw, 'utf8');
  if (bytes >= 28 * 1024) p.push(`payload: ${bytes} bytes, Teams takes under 28 KB (28,672 bytes)`);
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return [...p, 'body: not JSON'];
  }
  if (!isObject(body)) return [...p, 'body: not a JSON object'];
  if (body.type !== 'message') p.push(`type: ${String(body.type)}, want message`);
  if (!list(p, 'attachments', body.attachments, 1, Infinity)) return p;
  body.attachments.forEach((a, i) => {
    const at = `attachments[${i}]`;
    if (!isObject(a)) return void p.push(`${at}: not an object`);
    if (a.contentType !== 'application/vnd.microsoft.card.adaptive') p.push(`${at}.contentType: ${String(a.contentType)}`);
    const card = a.content;
    if (!isObject(card)) return void p.push(`${at}.content: not an object`);
    if (card.type !== 'AdaptiveCard') p.push(`${at}.content.type: ${String(card.type)}, want AdaptiveCard`);
    // Teams renders Adaptive Cards up to version 1.5.
    if (typeof card.version !== 'string' || !/^1\.[0-5]$/.test(card.version)) p.push(`${at}.content.version: ${String(card.version)}`);
    if (list(p, `${at}.content.body`, card.body, 1, Infinity)) card.body.forEach((e, j) => teamsElement(p, `${at}.content.body[${j}]`, e));
    if (card.actions === undefined || !list(p, `${at}.content.actions`, card.actions, 0, Infinity)) return;
    card.actions.forEach((x, j) => {
      const path = `${at}.content.actions[${j}]`;
      if (!isObject(x) || x.type !== 'Action.OpenUrl') return void p.push(`${path}: not an Action.OpenUrl`);
      str(p, `${path}.title`, x.title, Infinity, { min: 1 });
      httpUrl(p, `${path}.url`, x.url);
    });
  });
  return p;
}

/** Problems with a Discord execute-webhook body (parsed JSON); empty when Discord would take it. */
export function checkDiscord(body: unknown): string[] {
  const p: string[] = [];
  if (!isObject(body)) return ['body: not a JSON object'];
  const hasContent = str(p, 'content', body.content, 2000, { optional: true }) && body.content.length > 0;
  const embeds = body.embeds === undefined ? [] : list(p, 'embeds', body.embeds, 0, 10) ? body.embeds : [];
  if (!hasContent && embeds.length === 0) p.push('body: an empty message (no content, no embeds)');
  // House rule, not Discord's: user text must never ping anyone.
  const mentions = body.allowed_mentions;
  if (!isObject(mentions) || !Array.isArray(mentions.parse) || mentions.parse.length > 0) p.push('allowed_mentions: parse must be []');
  let total = 0;
  const count = (path: string, v: unknown, max: number, opts: { optional?: boolean; min?: number } = {}) => {
    if (str(p, path, v, max, opts)) total += v.length;
  };
  embeds.forEach((e, i) => {
    const at = `embeds[${i}]`;
    if (!isObject(e)) return void p.push(`${at}: not an object`);
    count(`${at}.title`, e.title, 256, { optional: true });
    count(`${at}.description`, e.description, 4096, { optional: true });
    if (e.footer !== undefined) count(`${at}.footer.text`, isObject(e.footer) ? e.footer.text : undefined, 2048);
    if (e.author !== undefined) count(`${at}.author.name`, isObject(e.author) ? e.author.name : undefined, 256);
    if (e.url !== undefined) httpUrl(p, `${at}.url`, e.url);
    if (e.color !== undefined && !(Number.isInteger(e.color) && (e.color as number) >= 0 && (e.color as number) <= 0xffffff)) p.push(`${at}.color: not an RGB integer`);
    if (e.timestamp !== undefined && (typeof e.timestamp !== 'string' || Number.isNaN(Date.parse(e.timestamp)))) p.push(`${at}.timestamp: not ISO-8601`);
    if (e.fields === undefined || !list(p, `${at}.fields`, e.fields, 0, 25)) return;
    e.fields.forEach((f, j) => {
      if (!isObject(f)) return void p.push(`${at}.fields[${j}]: not an object`);
      // Discord refuses empty field names and values ("must be 1 or more in length").
      count(`${at}.fields[${j}].name`, f.name, 256, { min: 1 });
      count(`${at}.fields[${j}].value`, f.value, 1024, { min: 1 });
      if (f.inline !== undefined && typeof f.inline !== 'boolean') p.push(`${at}.fields[${j}].inline: not a boolean`);
    });
  });
  if (total > 6000) p.push(`embeds: ${total} characters in all, over 6000`);
  return p;
}

/** The event kinds a webhook body may carry (restated from src/types.ts on purpose). */
const EVENT_KINDS = ['changed', 'previewed', 'skipped', 'ignored', 'failed', 'unlocked', 'missed', 'awaiting-approval'];

/**
 * Problems with a generic webhook request: JSON content type, a timestamp in Unix seconds, a
 * ScalingEvent body at top level, and with `secret` a valid `sha256=` signature of
 * `"<timestamp>.<raw body>"` (recomputed here, independently of the formatter).
 */
export function checkWebhook(headers: Record<string, string | string[] | undefined>, raw: string, secret?: string | null): string[] {
  const p: string[] = [];
  const h = (name: string) => {
    const found = Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
    return Array.isArray(found) ? found[0] : found;
  };
  if (!/^application\/json\b/i.test(h('content-type') ?? '')) p.push(`content-type: ${h('content-type')}, want application/json`);
  const timestamp = h('x-pulumiscale-timestamp');
  // Seconds, not milliseconds: a 13-digit value is a receiver's replay window gone wrong.
  if (timestamp === undefined || !/^\d{1,11}$/.test(timestamp)) p.push(`X-PulumiScale-Timestamp: ${timestamp}, want Unix seconds`);
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    p.push('body: not JSON');
  }
  if (isObject(body)) {
    for (const key of ['id', 'target', 'at', 'reason', 'source']) if (typeof body[key] !== 'string') p.push(`body.${key}: not a string`);
    if (!EVENT_KINDS.includes(body.kind as string)) p.push(`body.kind: ${String(body.kind)}`);
  } else if (body !== undefined) p.push('body: not a ScalingEvent object');
  if (secret) {
    const got = h('x-pulumiscale-signature') ?? '';
    const want = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex')}`;
    if (!/^sha256=[0-9a-f]{64}$/.test(got)) p.push(`X-PulumiScale-Signature: ${got || 'missing'}, want sha256=<hex>`);
    else if (!timingSafeEqual(Buffer.from(got), Buffer.from(want))) p.push('X-PulumiScale-Signature: does not match the body and timestamp');
  }
  return p;
}

/** The platform's checker over one request. */
function check(opts: ReceiverOptions, headers: IncomingHttpHeaders, raw: string, body: unknown): string[] {
  if (opts.type === 'webhook') return checkWebhook(headers, raw, opts.secret);
  const p = /^application\/json\b/i.test(headers['content-type'] ?? '') ? [] : [`content-type: ${headers['content-type']}, want application/json`];
  if (opts.type === 'teams') return [...p, ...checkTeams(raw)];
  if (body === undefined) return [...p, 'body: not JSON'];
  return [...p, ...(opts.type === 'slack' ? checkSlack(body) : checkDiscord(body))];
}

/** A refusal as the platform words it: Slack says only `invalid_payload`, Discord sends JSON. */
function refuse(res: ServerResponse, type: DestinationType, found: string[]): void {
  if (type === 'slack') return void res.writeHead(400, { 'content-type': 'text/plain' }).end('invalid_payload');
  if (type === 'discord') return void res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 50035, message: 'Invalid Form Body', problems: found }));
  res.writeHead(400, { 'content-type': 'text/plain' }).end(found.join('\n'));
}

/** The platform's success: Slack 200 `ok`, Discord 204, Teams 202, a generic webhook 200. */
function accept(res: ServerResponse, type: DestinationType): void {
  if (type === 'slack') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  res.writeHead(type === 'discord' ? 204 : type === 'teams' ? 202 : 200).end();
}

/** Starts a receiver for `opts.type` on 127.0.0.1 at a free port. */
export async function startReceiver(opts: ReceiverOptions): Promise<Receiver> {
  const received: ReceivedRequest[] = [];
  const problems: string[] = [];
  const script = [...(opts.script ?? [])];
  const arrivals = new EventEmitter();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const found = check(opts, req.headers, raw, body);
      problems.push(...found);
      const next = found.length > 0 ? undefined : script.shift();
      const status = found.length > 0 ? 400 : (next?.status ?? (opts.type === 'discord' ? 204 : opts.type === 'teams' ? 202 : 200));
      received.push({ at: Date.now(), headers: req.headers, body, raw, status });
      if (found.length > 0) refuse(res, opts.type, found);
      else if (next) res.writeHead(next.status, next.retryAfter === undefined ? {} : { 'retry-after': String(next.retryAfter) }).end(`scripted ${next.status}`);
      else accept(res, opts.type);
      arrivals.emit('arrival');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/${opts.type}`,
    received,
    problems,
    async waitFor(n, timeoutMs = 5000) {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        // Woken by each arrival, never by a timer: the count is checked again after each one.
        while (received.length < n) await once(arrivals, 'arrival', { signal });
      } catch {
        throw new Error(`${opts.type} receiver: ${received.length} of ${n} requests after ${timeoutMs} ms`);
      }
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

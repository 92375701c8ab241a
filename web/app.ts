/**
 * The status page: every target's state as a card (value, desired value, bounds, signals,
 * pause, cooldowns, schedules, operations, a 24-hour chart) with the operator's commands, and
 * the recent events, filterable. Kept current by the live stream (`GET /api/v1/stream`), and by
 * polling while the stream is down. Everything shown from the API goes in as text, never markup.
 *
 * One file on purpose: the daemon serves exactly index.html, app.js and style.css, and there is
 * no bundler; the types are a declaration file, erased by the build. The SSE parser is
 * exported so that a test in the browser can feed it input directly.
 */
import type { ApiErrorBody, Command, EventKind, ScalingEvent, TargetState } from './types.js';

/** Every kind of event, in the order the filter lists them. */
const EVENT_KINDS: readonly EventKind[] = ['changed', 'previewed', 'skipped', 'ignored', 'failed', 'unlocked', 'missed', 'awaiting-approval', 'drift'];

/** How often to poll while the stream is down, ms. */
const POLL_MS = 5_000;
/** The chart's window. */
const WINDOW_MS = 24 * 3_600_000;
/** Recent events fetched across all targets, and per target (for its chart and the filter). */
const RECENT_LIMIT = 200;
const HISTORY_LIMIT = 1_000;
/** Table rows shown at most. */
const ROWS_SHOWN = 100;

// ---------------------------------------------------------------------------------------------
// The API: JSON over fetch, with the bearer token kept in this tab's sessionStorage (never a cookie,
// so no other site can make the browser send it). A refusal becomes an ApiError with the API's code.

const TOKEN_KEY = 'pulumiscale.apiToken';

/** A refusal from the API (its `{"error": {"code", "message"}}`), or a request that never got an answer. */
class ApiError extends Error {
  constructor(
    /** The HTTP status, 0 when no answer came. */
    readonly status: number,
    /** The API's code (`PS_…`), or `NETWORK` / `HTTP_<status>` when the answer had none. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The API answered 401: the token is missing or wrong. */
  get unauthorized(): boolean {
    return this.status === 401;
  }
}

/** The token for this tab, or null. */
function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the token lives only in memory (see setToken)
  }
}

let memoryToken: string | null = storedToken();

function currentToken(): string | null {
  return memoryToken;
}

/** Keeps `token` for this tab (null forgets it). */
function setToken(token: string | null): void {
  memoryToken = token;
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // sessionStorage unavailable (a locked-down browser): memory only, lost on reload.
  }
}

/** The headers every API request carries: the bearer token, when there is one. */
function authHeaders(token: string | null = memoryToken): Record<string, string> {
  return token === null ? {} : { authorization: `Bearer ${token}` };
}

/**
 * One API call: resolves with the parsed JSON body of a 2xx answer, rejects with an ApiError
 * otherwise. `token` overrides the stored one (a login attempt).
 */
async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown, token: string | null = memoryToken): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders(token) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      cache: 'no-store',
      credentials: 'omit',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `cannot reach the daemon (${err instanceof Error ? err.message : String(err)})`);
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON: reported below by status
  }
  if (!res.ok) {
    const error = (parsed as Partial<ApiErrorBody> | undefined)?.error;
    if (error && typeof error.code === 'string' && typeof error.message === 'string') throw new ApiError(res.status, error.code, error.message);
    throw new ApiError(res.status, `HTTP_${res.status}`, `the daemon answered ${res.status} ${res.statusText}`.trim());
  }
  return parsed as T;
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events over fetch. EventSource cannot send an Authorization header, so the page reads
// GET /api/v1/stream as a plain response body and parses text/event-stream itself.

/** One dispatched message. */
interface SseMessage {
  /** The `event:` field, or `message` when there was none. */
  event: string;
  /** The `data:` lines, joined with newlines. */
  data: string;
  /** The last event ID in effect when it was dispatched (null before any `id:`). */
  id: string | null;
}

const LF = 10;
const CR = 13;

/**
 * An incremental `text/event-stream` parser, following the WHATWG rules: lines end in CRLF, LF or
 * CR; a blank line dispatches; `:` starts a comment; `data:` lines accumulate; `id:` persists
 * across messages (an id with NUL is ignored); `retry:` takes digits only; a message without
 * data is not dispatched (its id still counts).
 */
export class SseParser {
  private buffer = '';
  /** The previous chunk ended in CR: a LF opening the next one belongs to that line end. */
  private skipLeadingLF = false;
  private data: string[] = [];
  private eventType = '';
  private idBuffer: string | null = null;
  /** The id of the last message dispatched (or of a data-less one): what to resume from. */
  lastEventId: string | null = null;
  /** The server's `retry:` advice, ms, once it gave one. */
  retry: number | null = null;

  constructor(
    private readonly onMessage: (message: SseMessage) => void,
    private readonly onComment: (text: string) => void = () => undefined,
  ) {}

  /** Feeds decoded text; dispatches every message it completes. */
  push(chunk: string): void {
    let text = chunk;
    if (this.skipLeadingLF && text.charCodeAt(0) === LF) text = text.slice(1);
    this.skipLeadingLF = false;
    const buffer = this.buffer + text;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i);
      if (c !== LF && c !== CR) continue;
      this.line(buffer.slice(start, i));
      if (c === CR) {
        if (i + 1 === buffer.length) this.skipLeadingLF = true;
        else if (buffer.charCodeAt(i + 1) === LF) i++;
      }
      start = i + 1;
    }
    this.buffer = buffer.slice(start);
  }

  /** The stream ended: a message not closed by a blank line is dropped, as the standard says. */
  end(): void {
    this.buffer = '';
    this.data = [];
    this.eventType = '';
    this.skipLeadingLF = false;
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return this.onComment(line.slice(1).trimStart());
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.idBuffer = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
      // Unknown fields are ignored.
    }
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer;
    const type = this.eventType;
    this.eventType = '';
    if (this.data.length === 0) return;
    const data = this.data.join('\n');
    this.data = [];
    this.onMessage({ event: type === '' ? 'message' : type, data, id: this.lastEventId });
  }
}

/** What {@link LiveStream} tells its owner. */
interface LiveStreamHandlers {
  /** The request headers to send (the bearer token); asked before each connection. */
  headers(): Record<string, string>;
  /** A connection is open and streaming. */
  onOpen(): void;
  /** A message arrived. */
  onMessage(message: SseMessage): void;
  /** The connection failed or dropped; another try follows after `retryInMs`. */
  onDown(reason: string, retryInMs: number): void;
  /** The server refused the credentials (401): the stream stops for good. */
  onUnauthorized(): void;
}

interface LiveStreamOptions {
  /** First delay after a drop, ms; doubles with each failed try up to `maxDelayMs`. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** With nothing received (not even a `: ping`) for this long, the connection counts as dead. */
  idleTimeoutMs?: number;
  /** A connection that lived this long resets the delay to `minDelayMs`. */
  healthyAfterMs?: number;
}

/**
 * Keeps one `text/event-stream` connection open. Each try sends the last event id seen as
 * `Last-Event-ID`, so the server can replay what was missed while it was down.
 */
class LiveStream {
  private active = false;
  /** Which run of the connect loop is current: a stop and a start make the old one end quietly. */
  private run = 0;
  private controller: AbortController | null = null;
  private wake: (() => void) | null = null;
  /** The id of the last message received, sent as Last-Event-ID on the next try. */
  lastEventId: string | null = null;
  private readonly opts: Required<LiveStreamOptions>;

  constructor(
    private readonly url: string,
    private readonly handlers: LiveStreamHandlers,
    options: LiveStreamOptions = {},
  ) {
    this.opts = {
      minDelayMs: options.minDelayMs ?? 1_000,
      maxDelayMs: options.maxDelayMs ?? 30_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      healthyAfterMs: options.healthyAfterMs ?? 10_000,
    };
  }

  /** Starts connecting (no-op when running). */
  start(): void {
    if (this.active) return;
    this.active = true;
    void this.loop(++this.run);
  }

  /** Closes the connection and stops trying. */
  stop(): void {
    this.active = false;
    this.run++;
    this.controller?.abort();
    this.controller = null;
    this.wake?.();
  }

  private async loop(run: number): Promise<void> {
    const live = () => this.active && this.run === run;
    let failures = 0;
    let serverRetry: number | null = null;
    while (live()) {
      const controller = new AbortController();
      this.controller = controller;
      let reason: string;
      let openedAt: number | null = null;
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', ...this.handlers.headers() };
        // An empty id (`id:` alone) means "no id": nothing to resume from.
        if (this.lastEventId !== null && this.lastEventId !== '') headers['last-event-id'] = this.lastEventId;
        const res = await fetch(this.url, { headers, signal: controller.signal, cache: 'no-store', credentials: 'omit' });
        if (!live()) {
          await res.body?.cancel();
          return;
        }
        if (res.status === 401) {
          await res.body?.cancel();
          this.active = false;
          this.handlers.onUnauthorized();
          return;
        }
        if (!res.ok || res.body === null) {
          await res.body?.cancel();
          throw new Error(`the stream answered HTTP ${res.status}`);
        }
        const type = res.headers.get('content-type') ?? '';
        if (!type.startsWith('text/event-stream')) {
          await res.body.cancel();
          throw new Error(`the stream answered ${type || 'no content type'}, not text/event-stream`);
        }
        openedAt = Date.now();
        this.handlers.onOpen();
        serverRetry = await this.read(res.body, controller, live);
        reason = 'the stream closed';
      } catch (err) {
        if (!live()) return;
        reason = controller.signal.aborted ? `no message or heartbeat for ${Math.round(this.opts.idleTimeoutMs / 1000)} s` : errorText(err);
      }
      if (!live()) return;
      if (openedAt !== null && Date.now() - openedAt >= this.opts.healthyAfterMs) failures = 0;
      failures++;
      const base = Math.max(serverRetry ?? 0, this.opts.minDelayMs);
      const delay = Math.min(this.opts.maxDelayMs, base * 2 ** (failures - 1));
      // Jitter, so many open pages do not all come back in the same instant.
      const wait = Math.round(delay * (0.75 + Math.random() * 0.25));
      this.handlers.onDown(reason, wait);
      await this.sleep(wait);
    }
  }

  /** Reads a body until it ends or goes idle; resolves with the server's retry advice. */
  private async read(body: ReadableStream<Uint8Array>, controller: AbortController, live: () => boolean): Promise<number | null> {
    const parser = new SseParser((message) => {
      if (!live()) return;
      if (message.id !== null) this.lastEventId = message.id;
      this.handlers.onMessage(message);
    });
    const decoder = new TextDecoder();
    const reader = body.getReader();
    let idle: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(), this.opts.idleTimeoutMs);
    };
    arm();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        parser.push(decoder.decode(value, { stream: true }));
        // A data-less message's id (or an id before a comment) still moves the resume point.
        if (parser.lastEventId !== null && live()) this.lastEventId = parser.lastEventId;
      }
      parser.push(decoder.decode());
      parser.end();
    } finally {
      clearTimeout(idle);
      reader.releaseLock();
    }
    return parser.retry;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// The chart's numbers: the value over a window as steps rebuilt from `changed` events, and ticks.

/** The value `v` from time `t` (ms since the epoch) until the next point. */
interface Point {
  t: number;
  v: number;
}

/**
 * The value over [from, to] as steps, oldest first: one point at `from` (when the value then is
 * known), one per applied change inside the window, and one at `to`. The value at `from` is the
 * last change before the window, else the first change's `from` inside it, else `current`.
 * When `current` differs from the last change (a value read from the stack, drift), the series
 * ends on `current`.
 */
function valueSeries(events: readonly ScalingEvent[], current: number | null, from: number, to: number): Point[] {
  const changes = events
    .filter((e) => e.kind === 'changed' && !e.dryRun && e.to !== null)
    .map((e) => ({ t: Date.parse(e.at), from: e.from, to: e.to as number }))
    .filter((c) => Number.isFinite(c.t) && c.t <= to)
    .sort((a, b) => a.t - b.t);
  const before = changes.filter((c) => c.t <= from);
  const inside = changes.filter((c) => c.t > from);
  const points: Point[] = [];
  const start = before.length > 0 ? (before[before.length - 1] as (typeof before)[number]).to : (inside[0]?.from ?? (inside.length === 0 ? current : null));
  if (start !== null) points.push({ t: from, v: start });
  for (const c of inside) points.push({ t: c.t, v: c.to });
  const last = points[points.length - 1];
  if (last === undefined) return [];
  points.push({ t: to, v: current ?? last.v });
  return points;
}

/** Up to about `count` round values covering [lo, hi] (integers: the values are counts). */
function niceTicks(lo: number, hi: number, count = 4): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude);
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) ticks.push(Math.round(v));
  return ticks;
}

// ---------------------------------------------------------------------------------------------
// The chart: an inline SVG with a step line, the bounds as dashed lines, hour and value ticks; colours
// come from CSS classes so it follows the light or dark scheme.

const SVG_NS = 'http://www.w3.org/2000/svg';

interface ChartInput {
  points: Point[];
  from: number;
  to: number;
  /** The bounds in effect now, and where they come from. */
  bounds: { min: number; max: number; source: string };
  /** The target's own bounds (drawn too when a schedule's are in effect). */
  own: { min: number; max: number };
  width: number;
  height: number;
  /** Accessible name and description. */
  title: string;
  description: string;
  /** Formats a tick time. */
  formatTime: (ms: number) => string;
}

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

let chartIds = 0;

/** Draws the chart. */
function chartSvg(input: ChartInput): SVGSVGElement {
  const { width, height, from, to, points } = input;
  const margin = { top: 10, right: 64, bottom: 24, left: 36 };
  const plotW = Math.max(10, width - margin.left - margin.right);
  const plotH = Math.max(10, height - margin.top - margin.bottom);
  const id = `chart-${++chartIds}`;
  const svg = el('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`, class: 'chart-svg' });
  svg.append(el('title', { id: `${id}-title` }, input.title), el('desc', { id: `${id}-desc` }, input.description));

  const values = points.map((p) => p.v);
  const scheduled = input.bounds.source !== 'config' && (input.bounds.min !== input.own.min || input.bounds.max !== input.own.max);
  const lines = [input.bounds.min, input.bounds.max, ...(scheduled ? [input.own.min, input.own.max] : [])];
  let lo = Math.min(...values, ...lines);
  let hi = Math.max(...values, ...lines);
  const pad = Math.max(1, Math.round((hi - lo) * 0.08));
  lo = Math.max(0, lo - pad);
  hi = hi + pad;
  const x = (t: number) => margin.left + ((t - from) / (to - from)) * plotW;
  const y = (v: number) => margin.top + plotH - ((v - lo) / (hi - lo)) * plotH;

  // Value grid and labels.
  const grid = el('g', { class: 'chart-grid', 'aria-hidden': 'true' });
  for (const v of niceTicks(lo, hi, Math.max(2, Math.floor(plotH / 28)))) {
    grid.append(
      el('line', { x1: margin.left, x2: margin.left + plotW, y1: y(v), y2: y(v) }),
      el('text', { x: margin.left - 6, y: y(v), 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'chart-label' }, String(v)),
    );
  }
  // Hour ticks: every 6 h when there is room, else every 12 h.
  const hours = (to - from) / 3_600_000;
  const every = plotW / hours >= 14 ? 6 : 12;
  for (let h = 0; h <= hours + 1e-9; h += every) {
    const t = from + h * 3_600_000;
    const anchor = h === 0 ? 'start' : h + every > hours + 1e-9 ? 'end' : 'middle';
    grid.append(
      el('line', { x1: x(t), x2: x(t), y1: margin.top + plotH, y2: margin.top + plotH + 4, class: 'chart-tick' }),
      el('text', { x: x(t), y: height - 6, 'text-anchor': anchor, class: 'chart-label' }, h + every > hours + 1e-9 ? 'now' : input.formatTime(t)),
    );
  }
  svg.append(grid);

  // Bounds: the ones in effect (dashed), and the target's own when a schedule's replace them.
  const boundsGroup = el('g', { 'aria-hidden': 'true' });
  const boundLine = (v: number, label: string, cls: string) => {
    boundsGroup.append(
      el('line', { x1: margin.left, x2: margin.left + plotW, y1: y(v), y2: y(v), class: cls }),
      el('text', { x: margin.left + plotW + 6, y: y(v), 'dominant-baseline': 'middle', class: `chart-label ${cls}-label` }, label),
    );
  };
  if (scheduled) {
    boundLine(input.own.max, `max ${input.own.max}`, 'chart-own-bound');
    boundLine(input.own.min, `min ${input.own.min}`, 'chart-own-bound');
  }
  boundLine(input.bounds.max, `max ${input.bounds.max}`, 'chart-bound');
  boundLine(input.bounds.min, `min ${input.bounds.min}`, 'chart-bound');
  svg.append(boundsGroup);

  // The value, as steps.
  if (points.length > 0) {
    const first = points[0] as Point;
    let d = `M${x(first.t).toFixed(1)},${y(first.v).toFixed(1)}`;
    for (const p of points.slice(1)) d += `H${x(p.t).toFixed(1)}V${y(p.v).toFixed(1)}`;
    const lastPoint = points[points.length - 1] as Point;
    svg.append(
      el('path', { d, class: 'chart-line', 'aria-hidden': 'true' }),
      el('circle', { cx: x(lastPoint.t), cy: y(lastPoint.v), r: 3.5, class: 'chart-dot', 'aria-hidden': 'true' }),
    );
  } else {
    svg.append(el('text', { x: margin.left + plotW / 2, y: margin.top + plotH / 2, 'text-anchor': 'middle', class: 'chart-label' }, 'no value known yet'));
  }
  return svg;
}


// ---------------------------------------------------------------------------------------------
// DOM helpers

function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
}

type Child = Node | string | null | undefined | false;

/** An element with attributes (`class` included) and children; strings become text nodes. */
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | number | boolean | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

/** Several nodes as one child. */
function frag(...children: Child[]): DocumentFragment {
  const fragment = document.createDocumentFragment();
  for (const child of children) if (child !== null && child !== undefined && child !== false) fragment.append(child);
  return fragment;
}

const ui = {
  connection: byId<HTMLParagraphElement>('connection'),
  logout: byId<HTMLButtonElement>('logout'),
  main: byId<HTMLElement>('main'),
  banner: byId<HTMLDivElement>('banner'),
  announce: byId<HTMLDivElement>('announce'),
  login: byId<HTMLElement>('login'),
  loginForm: byId<HTMLFormElement>('login-form'),
  loginToken: byId<HTMLInputElement>('login-token'),
  loginError: byId<HTMLParagraphElement>('login-error'),
  dashboard: byId<HTMLDivElement>('dashboard'),
  targetsEmpty: byId<HTMLParagraphElement>('targets-empty'),
  targets: byId<HTMLDivElement>('targets'),
  filterTarget: byId<HTMLSelectElement>('filter-target'),
  filterKind: byId<HTMLSelectElement>('filter-kind'),
  eventsCount: byId<HTMLParagraphElement>('events-count'),
  eventsBody: byId<HTMLTableSectionElement>('events-body'),
  eventsTitle: byId<HTMLHeadingElement>('events-title'),
};

// ---------------------------------------------------------------------------------------------
// Time

const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const hourFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** "in 5 minutes", "2 hours ago". */
function relative(ms: number): string {
  const diff = (ms - Date.now()) / 1000;
  const abs = Math.abs(diff);
  if (abs < 45) return relativeFormat.format(Math.round(diff), 'second');
  if (abs < 45 * 60) return relativeFormat.format(Math.round(diff / 60), 'minute');
  if (abs < 36 * 3600) return relativeFormat.format(Math.round(diff / 3600), 'hour');
  return relativeFormat.format(Math.round(diff / 86_400), 'day');
}

/** A `<time>`: the clock time (with the day when not within the day around now), optionally with how far it is. */
function when(iso: string, withRelative = true): HTMLTimeElement {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return h('time', {}, iso);
  const near = Math.abs(ms - Date.now()) < 20 * 3_600_000;
  const text = `${near ? clockFormat.format(ms) : dayFormat.format(ms)}${withRelative ? ` (${relative(ms)})` : ''}`;
  return h('time', { datetime: new Date(ms).toISOString(), title: fullFormat.format(ms) }, text);
}

// ---------------------------------------------------------------------------------------------
// The model

type Phase = 'starting' | 'login' | 'dashboard';
let phase: Phase = 'starting';
/** Bumped whenever the view is torn down (log out, refused token): answers to older requests are dropped. */
let session = 0;

const targets = new Map<string, TargetState>();
const events = new Map<string, ScalingEvent>();
/** Targets whose history (for the chart) has been fetched. */
const historyLoaded = new Set<string>();
/**
 * Per target, bumped by every state that is newer than any list request still in flight (the
 * stream's, a command's answer): a poll's answer does not overwrite a target bumped since it left.
 */
const stateVersion = new Map<string, number>();
/** Whether events seen from now on are news (announced to screen readers). */
let eventsAreNews = false;

function bump(name: string): void {
  stateVersion.set(name, (stateVersion.get(name) ?? 0) + 1);
}

// ---------------------------------------------------------------------------------------------
// Messages to the operator

function describe(err: unknown): string {
  if (err instanceof ApiError) return err.status === 0 ? err.message : `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

function showBanner(text: string): void {
  // The same words again (a poll failing every few seconds) are not announced again.
  if (!ui.banner.hidden && ui.banner.dataset.text === text) return;
  ui.banner.dataset.text = text;
  ui.banner.replaceChildren(h('strong', {}, 'Error: '), text);
  ui.banner.hidden = false;
}

function clearBanner(): void {
  if (ui.banner.hidden) return;
  ui.banner.hidden = true;
  delete ui.banner.dataset.text;
  ui.banner.replaceChildren();
}

/** Says something to screen readers (a polite live region), without showing it. */
function announce(text: string): void {
  ui.announce.textContent = '';
  // A fresh text node after a clear makes the same sentence twice be read twice.
  setTimeout(() => (ui.announce.textContent = text), 50);
}

type ConnectionState = 'connecting' | 'live' | 'polling' | 'offline';

function setConnection(state: ConnectionState, text: string, detail = ''): void {
  if (ui.connection.dataset.state === state && ui.connection.textContent === text) return;
  ui.connection.dataset.state = state;
  ui.connection.textContent = text;
  ui.connection.title = detail;
}

// ---------------------------------------------------------------------------------------------
// Views

function showLogin(message: string): void {
  phase = 'login';
  ui.dashboard.hidden = true;
  ui.logout.hidden = true;
  ui.login.hidden = false;
  clearBanner();
  setConnection('offline', 'Signed out');
  ui.loginError.textContent = message;
  ui.loginToken.focus();
}

function showDashboard(): void {
  const wasLogin = phase === 'login';
  phase = 'dashboard';
  ui.login.hidden = true;
  ui.dashboard.hidden = false;
  ui.logout.hidden = currentToken() === null;
  if (wasLogin) ui.main.focus();
}

/** Drops everything shown (a refused token, a logout). */
function tearDown(): void {
  session++;
  stream.stop();
  stream.lastEventId = null;
  stopPolling();
  targets.clear();
  events.clear();
  historyLoaded.clear();
  stateVersion.clear();
  for (const card of cards.values()) card.resize.disconnect();
  cards.clear();
  ui.targets.replaceChildren();
  ui.eventsBody.replaceChildren();
  eventsAreNews = false;
}

/** The API refused the token (or wants one): back to the login form. */
function unauthorized(): void {
  const hadToken = currentToken() !== null;
  tearDown();
  setToken(null);
  showLogin(hadToken ? 'The token was refused. Enter a valid token.' : '');
}

/** A failed request: a 401 signs out, anything else is shown. */
function failed(err: unknown, what: string): void {
  if (err instanceof ApiError && err.unauthorized) return unauthorized();
  showBanner(`${what}: ${describe(err)}`);
}

// ---------------------------------------------------------------------------------------------
// Loading

async function start(): Promise<void> {
  const mine = ++session;
  setConnection('connecting', 'Connecting…');
  let list: TargetState[];
  try {
    list = await api<TargetState[]>('GET', '/api/v1/targets');
  } catch (err) {
    if (mine !== session) return;
    if (err instanceof ApiError && err.unauthorized) return unauthorized();
    showBanner(`Cannot load the status: ${describe(err)}. Retrying in ${POLL_MS / 1000} s.`);
    setConnection('offline', 'Offline');
    setTimeout(() => {
      if (mine === session) void start();
    }, POLL_MS);
    return;
  }
  if (mine !== session) return;
  clearBanner();
  showDashboard();
  applyTargetList(list, null);
  // Poll until the stream is open: a stream that never answers must not leave the page stale.
  startPolling();
  stream.start();
  try {
    addEvents(await api<ScalingEvent[]>('GET', `/api/v1/events?limit=${RECENT_LIMIT}`));
    if (mine !== session) return;
    await loadHistories();
  } catch (err) {
    if (mine === session) failed(err, 'Cannot load the events');
  }
  if (mine === session) eventsAreNews = true;
}

/** Histories being fetched, by target: a second caller waits for the same request. */
const historyFetches = new Map<string, Promise<void>>();

/** Fetches the history of every target not fetched yet (for its chart and the filter). */
async function loadHistories(): Promise<void> {
  const mine = session;
  const fetches = [...targets.keys()]
    .filter((name) => !historyLoaded.has(name))
    .map((name) => {
      let fetching = historyFetches.get(name);
      if (fetching === undefined) {
        fetching = api<ScalingEvent[]>('GET', `/api/v1/events?target=${encodeURIComponent(name)}&limit=${HISTORY_LIMIT}`)
          .then((list) => {
            if (mine !== session) return;
            historyLoaded.add(name);
            addEvents(list);
          })
          .finally(() => historyFetches.delete(name));
        historyFetches.set(name, fetching);
      }
      return fetching;
    });
  await Promise.all(fetches);
}

/** Refetches the targets and the recent events (a poll, a reconnect, a `reset`). */
async function refresh(): Promise<void> {
  const mine = session;
  const versions = new Map(stateVersion);
  const [list, recent] = await Promise.all([api<TargetState[]>('GET', '/api/v1/targets'), api<ScalingEvent[]>('GET', `/api/v1/events?limit=${RECENT_LIMIT}`)]);
  if (mine !== session) return;
  applyTargetList(list, versions);
  addEvents(recent);
  await loadHistories();
  if (mine === session) clearBanner();
}

let pollTimer: ReturnType<typeof setTimeout> | undefined;
let streamOpen = false;
/** Why the stream is down, and when it tries again (for the connection indicator's title). */
let streamTrouble = '';

function showPolling(): void {
  setConnection('polling', `Polling every ${POLL_MS / 1000} s`, streamTrouble);
}

function startPolling(): void {
  if (pollTimer !== undefined || phase !== 'dashboard') return;
  pollTimer = setTimeout(() => void poll(), POLL_MS);
}

function stopPolling(): void {
  clearTimeout(pollTimer);
  pollTimer = undefined;
}

async function poll(): Promise<void> {
  const mine = session;
  try {
    await refresh();
    if (mine === session && !streamOpen) showPolling();
  } catch (err) {
    if (mine !== session) return;
    if (err instanceof ApiError && err.unauthorized) return unauthorized();
    setConnection('offline', 'Offline', describe(err));
    showBanner(`Cannot reach the daemon: ${describe(err)}. Retrying every ${POLL_MS / 1000} s.`);
  } finally {
    if (mine === session) {
      pollTimer = undefined;
      if (!streamOpen) startPolling();
    }
  }
}

const stream = new LiveStream('/api/v1/stream', {
  headers: () => authHeaders(),
  onOpen() {
    streamOpen = true;
    stopPolling();
    setConnection('live', 'Live', 'Updates arrive as they happen (server-sent events).');
    // Subscribed first, then read: what changed before the stream opened (after the first load,
    // or while it was down) is in this read; what changes from now on comes on the stream. A
    // state the stream brings meanwhile wins over the read (see stateVersion).
    void refresh().catch((err: unknown) => failed(err, 'Cannot refresh'));
  },
  onMessage: handleMessage,
  onDown(reason, retryInMs) {
    streamOpen = false;
    streamTrouble = `The live stream is unavailable (${reason}); next try in ${Math.ceil(retryInMs / 1000)} s.`;
    if (phase !== 'dashboard') return;
    // Offline stays offline until a poll gets an answer.
    if (ui.connection.dataset.state !== 'offline') showPolling();
    startPolling();
  },
  onUnauthorized: () => unauthorized(),
});

function parse<T>(data: string): T | null {
  try {
    return JSON.parse(data) as T;
  } catch {
    return null;
  }
}

function handleMessage(message: SseMessage): void {
  if (phase !== 'dashboard') return;
  switch (message.event) {
    case 'event': {
      const event = parse<ScalingEvent>(message.data);
      if (event !== null && typeof event.id === 'string') addEvents([event]);
      break;
    }
    case 'state': {
      const state = parse<TargetState>(message.data);
      if (state === null || typeof state.name !== 'string') break;
      bump(state.name);
      setTarget(state);
      break;
    }
    case 'reset':
      historyLoaded.clear();
      void refresh().catch((err: unknown) => failed(err, 'Cannot refresh'));
      break;
    default:
    // Other message types are for other clients.
  }
}

// ---------------------------------------------------------------------------------------------
// Applying data

/** Replaces the target list; with `versions`, keeps any target updated since the request left. */
function applyTargetList(list: TargetState[], versions: Map<string, number> | null): void {
  const names = new Set(list.map((t) => t.name));
  for (const name of [...targets.keys()]) if (!names.has(name)) targets.delete(name);
  for (const state of list) {
    if (versions !== null && (stateVersion.get(state.name) ?? 0) !== (versions.get(state.name) ?? 0)) continue;
    targets.set(state.name, state);
  }
  // Keep the API's order (the config's).
  const ordered = list.map((t) => [t.name, targets.get(t.name) as TargetState] as const);
  targets.clear();
  for (const [name, state] of ordered) targets.set(name, state);
  renderCards();
  renderFilterTargets();
}

function setTarget(state: TargetState): void {
  const before = targets.get(state.name);
  targets.set(state.name, state);
  const card = cards.get(state.name);
  if (card === undefined) {
    renderCards();
    renderFilterTargets();
    void loadHistories().catch((err: unknown) => failed(err, 'Cannot load the history'));
  } else updateCard(card, state);
  if (before !== undefined) announceStateChange(before, state);
}

function announceStateChange(before: TargetState, after: TargetState): void {
  if (before.error === null && after.error !== null) announce(`${after.name}: error ${after.error.code}: ${after.error.message}`);
  const wasPaused = before.pause !== null;
  const isPaused = after.pause !== null;
  if (!wasPaused && isPaused && after.pause !== null) announce(`${after.name} is paused until ${clockFormat.format(Date.parse(after.pause.until))}`);
  if (wasPaused && !isPaused) announce(`${after.name} is no longer paused`);
}

/** Adds events (ignoring ones already held) and redraws what shows them. */
function addEvents(list: readonly ScalingEvent[]): void {
  const fresh: ScalingEvent[] = [];
  for (const event of list) {
    if (events.has(event.id)) continue;
    events.set(event.id, event);
    fresh.push(event);
  }
  if (fresh.length === 0) return;
  trimEvents();
  renderEvents();
  renderFilterTargets();
  const touched = new Set(fresh.filter((e) => e.kind === 'changed').map((e) => e.target));
  for (const name of touched) {
    const card = cards.get(name);
    const state = targets.get(name);
    if (card !== undefined && state !== undefined) renderChart(card, state);
  }
  if (eventsAreNews) {
    const notable = fresh.filter((e) => e.kind === 'changed' || e.kind === 'failed' || e.kind === 'awaiting-approval' || e.kind === 'drift');
    if (notable.length === 1) announce(eventSentence(notable[0] as ScalingEvent));
    else if (notable.length > 1) announce(`${notable.length} new events`);
  }
}

function eventSentence(e: ScalingEvent): string {
  if (e.kind === 'changed') return `${e.target} changed from ${e.from ?? 'unknown'} to ${e.to ?? 'unknown'}: ${e.reason}`;
  if (e.kind === 'failed') return `${e.target}: an operation failed (${e.errorCode ?? 'error'}): ${e.reason}`;
  return `${e.target}: ${e.kind}: ${e.reason}`;
}

/** Keeps memory bounded on a page left open for days: the newest events per target. */
function trimEvents(): void {
  const cap = HISTORY_LIMIT * Math.max(1, targets.size) + RECENT_LIMIT * 2;
  if (events.size <= cap) return;
  // Down to 90%, so that a page at its cap does not sort everything again for every event.
  for (const e of sortedEvents().slice(Math.floor(cap * 0.9))) events.delete(e.id);
}

/** Newest first. */
function sortedEvents(): ScalingEvent[] {
  return [...events.values()].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Target cards

interface Card {
  root: HTMLElement;
  badges: HTMLUListElement;
  facts: HTMLDListElement;
  chart: HTMLElement;
  chartWidth: number;
  resize: ResizeObserver;
  resume: HTMLButtonElement;
  scaleInput: HTMLInputElement;
  scaleHint: HTMLElement;
  status: HTMLParagraphElement;
  error: HTMLParagraphElement;
}

const cards = new Map<string, Card>();
/** Element ids are made from a counter: target names may hold anything. */
let nextCardId = 0;

function renderCards(): void {
  for (const [name, card] of cards) {
    if (!targets.has(name)) {
      card.resize.disconnect();
      card.root.remove();
      cards.delete(name);
    }
  }
  let previous: Element | null = null;
  for (const [name, state] of targets) {
    let card = cards.get(name);
    if (card === undefined) {
      card = createCard(name);
      cards.set(name, card);
    }
    // In the API's order, moving only what is out of place (a moved node loses focus).
    const expected: Element | null = previous === null ? ui.targets.firstElementChild : previous.nextElementSibling;
    if (expected !== card.root) {
      if (previous === null) ui.targets.prepend(card.root);
      else previous.after(card.root);
    }
    previous = card.root;
    updateCard(card, state);
  }
  ui.targetsEmpty.hidden = targets.size > 0;
}

function createCard(name: string): Card {
  const id = `target-${++nextCardId}`;
  const badges = h('ul', { class: 'badges', 'aria-label': 'Status' });
  const facts = h('dl', { class: 'facts' });
  const chart = h('figure', { class: 'chart' });
  const status = h('p', { class: 'action-status', role: 'status' });
  const error = h('p', { class: 'action-error', role: 'alert' });

  // Scale to N.
  const scaleInput = h('input', { id: `${id}-to`, name: 'to', type: 'number', min: 0, step: 1, inputmode: 'numeric', required: true, 'aria-describedby': `${id}-to-hint`, class: 'input-number' });
  const scaleHint = h('span', { id: `${id}-to-hint`, class: 'hint' });
  const scaleForm = h(
    'form',
    { class: 'action-form', 'data-action': 'scale', novalidate: true },
    h(
      'fieldset',
      {},
      h('legend', {}, 'Scale'),
      h('div', { class: 'row' }, h('div', { class: 'field' }, h('label', { for: `${id}-to` }, 'To'), scaleInput), h('button', { class: 'button', type: 'submit' }, 'Scale')),
      scaleHint,
    ),
  );
  scaleForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void scaleTarget(name, card);
  });

  // Pause for a duration, one direction or both.
  const pauseFor = h('input', { id: `${id}-for`, name: 'for', type: 'text', value: '30m', required: true, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `${id}-for-hint`, class: 'input-duration' });
  const pauseDirection = h(
    'select',
    { id: `${id}-direction`, name: 'direction' },
    h('option', { value: 'both' }, 'Both directions'),
    h('option', { value: 'up' }, 'Scaling up'),
    h('option', { value: 'down' }, 'Scaling down'),
  );
  const pauseReason = h('input', { id: `${id}-reason`, name: 'reason', type: 'text', maxlength: 500, autocomplete: 'off', class: 'input-reason' });
  const pauseForm = h(
    'form',
    { class: 'action-form', 'data-action': 'pause', novalidate: true },
    h(
      'fieldset',
      {},
      h('legend', {}, 'Pause'),
      h(
        'div',
        { class: 'row' },
        h('div', { class: 'field' }, h('label', { for: `${id}-for` }, 'For'), pauseFor),
        h('div', { class: 'field' }, h('label', { for: `${id}-direction` }, 'Direction'), pauseDirection),
      ),
      h('span', { id: `${id}-for-hint`, class: 'hint' }, 'A duration such as 30m, 2h or 1h30m.'),
      h(
        'div',
        { class: 'row' },
        h('div', { class: 'field grow' }, h('label', { for: `${id}-reason` }, 'Reason (optional)'), pauseReason),
        h('button', { class: 'button', type: 'submit' }, 'Pause'),
      ),
    ),
  );
  pauseForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void pauseTarget(name, card, pauseFor.value.trim(), pauseDirection.value as 'both' | 'up' | 'down', pauseReason.value.trim());
  });

  const resume = h('button', { class: 'button secondary', type: 'button', 'data-action': 'resume' }, 'Resume');
  resume.addEventListener('click', () => void resumeTarget(name, card));
  const showEvents = h('button', { class: 'button link', type: 'button' }, 'Show its events');
  showEvents.addEventListener('click', () => {
    ui.filterTarget.value = name;
    renderEvents();
    ui.eventsTitle.scrollIntoView({ block: 'start' });
    ui.filterTarget.focus();
  });

  const root = h(
    'article',
    { class: 'card', 'data-target': name, 'aria-labelledby': `${id}-name` },
    h('header', { class: 'card-head' }, h('h3', { id: `${id}-name`, class: 'card-title' }, name), badges),
    h(
      'div',
      { class: 'card-body' },
      facts,
      h('div', { class: 'card-side' }, chart, h('div', { class: 'actions' }, scaleForm, pauseForm, h('div', { class: 'row buttons' }, resume, showEvents), status, error)),
    ),
  );
  const card: Card = { root, badges, facts, chart, chartWidth: 0, resize: new ResizeObserver(() => onResize(name)), resume, scaleInput, scaleHint, status, error };
  card.resize.observe(chart);
  return card;
}

function onResize(name: string): void {
  const card = cards.get(name);
  const state = targets.get(name);
  if (card === undefined || state === undefined) return;
  const width = Math.floor(card.chart.clientWidth);
  if (width > 0 && width !== card.chartWidth) renderChart(card, state);
}

function fact(label: string, field: string, ...value: Child[]): HTMLDivElement {
  return h('div', { class: 'fact', 'data-fact': field }, h('dt', {}, label), h('dd', { 'data-field': field }, ...value));
}

function muted(text: string): HTMLSpanElement {
  return h('span', { class: 'muted' }, text);
}

/** Where the bounds in effect come from, in words. */
function boundsSource(source: string): string {
  if (source === 'config') return "the target's config";
  if (source.startsWith('schedule:')) return `schedule ${source.slice('schedule:'.length)}`;
  return source;
}

function commandText(c: Command): string {
  const a = c.adjustment;
  const what = a.type === 'to' ? `to ${a.to ?? '?'}` : a.type === 'by' ? `by ${a.by !== undefined && a.by > 0 ? '+' : ''}${a.by ?? '?'}` : `one step ${a.direction ?? ''}`.trim();
  return `${what} (${c.source}${c.dryRun ? ', preview' : ''}: ${c.reason})`;
}

function pauseFact(s: TargetState): Child[] {
  // `paused` is true for either kind of pause; without an API pause it is the config's.
  if (s.pause === null) return s.paused ? [h('strong', { class: 'state-paused' }, 'Paused by the config'), ' ', muted('(paused: true)')] : ['Not paused'];
  const until = Date.parse(s.pause.until);
  const ended = Number.isFinite(until) && until <= Date.now();
  const scope = s.pause.direction === 'both' ? 'Paused' : s.pause.direction === 'up' ? 'Scaling up paused' : 'Scaling down paused';
  return [h('strong', { class: ended ? '' : 'state-paused' }, ended ? `${scope} until` : scope), ended ? ' ' : ' until ', when(s.pause.until), s.pause.reason ? h('span', { class: 'reason' }, s.pause.reason) : null];
}

function cooldownFact(s: TargetState): Child[] {
  const parts: Child[] = [];
  for (const direction of ['up', 'down'] as const) {
    const until = s.cooldownUntil[direction];
    if (until === null || Date.parse(until) <= Date.now()) continue;
    if (parts.length > 0) parts.push(h('br'));
    parts.push(`${direction === 'up' ? 'Up' : 'Down'} until `, when(until));
  }
  return parts.length > 0 ? parts : ['None'];
}

/** Each schedule, the next to start or fire first: whether it is in effect, and when it next starts or fires. */
function scheduleFact(s: TargetState): Child[] {
  if (s.schedules.length === 0) return [muted('No schedules')];
  const at = (next: string | null) => (next === null ? Number.POSITIVE_INFINITY : Date.parse(next));
  const list = h('ul', { class: 'schedules' });
  for (const schedule of [...s.schedules].sort((a, b) => at(a.next) - at(b.next))) {
    list.append(
      h(
        'li',
        {},
        h('strong', {}, schedule.name),
        schedule.active ? h('span', { class: 'in-effect' }, ' in effect') : null,
        schedule.next === null ? muted(' · no next start') : frag(' · next start or fire ', when(schedule.next)),
      ),
    );
  }
  return [list];
}

function operationFact(s: TargetState): Child[] {
  const parts: Child[] = [];
  if (s.running) parts.push(h('strong', { class: 'state-running' }, 'Running'));
  if (s.pendingCount > 0) {
    if (parts.length > 0) parts.push(' · ');
    parts.push(h('strong', { class: 'state-waiting' }, `${s.pendingCount} command${s.pendingCount === 1 ? '' : 's'} waiting`));
    const next = s.commands[0] ?? s.pending;
    if (next) parts.push(h('span', { class: 'reason' }, `Next: ${commandText(next)}`));
  }
  return parts.length > 0 ? parts : ['Idle'];
}

function signalsFact(s: TargetState): Child[] {
  if (s.signals.length === 0) return ['None active'];
  const list = h('ul', { class: 'signals' });
  for (const sig of s.signals) {
    const measure = sig.value === null ? '' : ` · ${sig.value}${sig.threshold === null ? '' : ` (threshold ${sig.threshold})`}`;
    list.append(
      h(
        'li',
        {},
        h('span', { class: `direction direction-${sig.direction}` }, sig.direction === 'up' ? 'Up' : 'Down'),
        ` ${sig.source}${measure} · since `,
        when(sig.since),
        h('code', { class: 'signal-id', title: sig.id }, sig.id),
      ),
    );
  }
  return [list];
}

function updateCard(card: Card, s: TargetState): void {
  // Badges: the state at a glance (words, not only colours).
  const badges: HTMLLIElement[] = [];
  if (s.error !== null) badges.push(h('li', { class: 'badge badge-error' }, 'Error'));
  if (s.running) badges.push(h('li', { class: 'badge badge-running' }, 'Operation running'));
  if (s.pendingCount > 0) badges.push(h('li', { class: 'badge badge-waiting' }, `${s.pendingCount} waiting`));
  if (s.paused || s.pause !== null) badges.push(h('li', { class: 'badge badge-paused' }, 'Paused'));
  if (s.signals.length > 0) badges.push(h('li', { class: 'badge badge-signal' }, `${s.signals.length} signal${s.signals.length === 1 ? '' : 's'}`));
  if (badges.length === 0) badges.push(h('li', { class: 'badge' }, 'Idle'));
  card.badges.replaceChildren(...badges);

  const values =
    s.configKeys.length > 1 && s.values
      ? h('ul', { class: 'keys' }, ...s.configKeys.map((key) => h('li', {}, h('code', {}, key), ` = ${s.values?.[key] ?? '—'}`)))
      : h('code', { class: 'key' }, s.configKeys[0] ?? '');
  const desired = s.desired;
  const ownBounds = s.bounds.min !== s.min || s.bounds.max !== s.max ? muted(` (own: ${s.min}–${s.max})`) : null;

  const facts: HTMLElement[] = [];
  if (s.error !== null) {
    facts.push(
      h('div', { class: 'fact fact-error', 'data-fact': 'error' }, h('dt', {}, 'Error'), h('dd', { 'data-field': 'error' }, h('strong', {}, s.error.code), ` ${s.error.message} `, muted('since '), when(s.error.at))),
    );
  }
  facts.push(
    fact('Current', 'current', h('span', { class: 'value' }, s.current === null ? '—' : String(s.current))),
    fact('Desired', 'desired', h('span', { class: 'value value-small' }, desired === null || desired.value === null ? '—' : String(desired.value)), desired ? h('span', { class: 'reason' }, desired.reason) : null),
    fact('Bounds', 'bounds', `${s.bounds.min}–${s.bounds.max}`, muted(` · ${boundsSource(s.bounds.source)}`), ownBounds),
    fact('Operation', 'operation', ...operationFact(s)),
    fact('Pause', 'pause', ...pauseFact(s)),
    fact('Cooldowns', 'cooldowns', ...cooldownFact(s)),
    fact('Schedules', 'schedule', ...scheduleFact(s)),
    fact('Signals', 'signals', ...signalsFact(s)),
    fact('Stack', 'stack', h('code', {}, s.stack), muted(s.configKeys.length > 1 ? ' · keys' : ' · key '), values),
  );
  card.facts.replaceChildren(...facts);

  card.scaleHint.textContent = `A whole number from ${s.bounds.min} to ${s.bounds.max}.`;
  if (document.activeElement !== card.scaleInput && card.scaleInput.value === '' && s.current !== null) card.scaleInput.placeholder = String(s.current);
  const pausable = s.pause !== null;
  card.resume.setAttribute('aria-disabled', String(!pausable));
  card.resume.title = pausable ? 'Lift the pause now' : 'Not paused through the API';
  renderChart(card, s);
}

function renderChart(card: Card, s: TargetState): void {
  const width = Math.floor(card.chart.clientWidth) || 560;
  card.chartWidth = width;
  const to = Date.now();
  const from = to - WINDOW_MS;
  const own = [...events.values()].filter((e) => e.target === s.name);
  const points = valueSeries(own, s.current, from, to);
  const changes = own.filter((e) => e.kind === 'changed' && !e.dryRun && Date.parse(e.at) > from).length;
  const values = points.map((p) => p.v);
  const range = values.length > 0 ? `between ${Math.min(...values)} and ${Math.max(...values)}` : 'unknown';
  const description =
    `${changes} change${changes === 1 ? '' : 's'} in the last 24 hours; the value was ${range}` +
    `${s.current === null ? '' : `, now ${s.current}`}; bounds in effect ${s.bounds.min} to ${s.bounds.max} (${boundsSource(s.bounds.source)}).`;
  const svg = chartSvg({
    points,
    from,
    to,
    bounds: s.bounds,
    own: { min: s.min, max: s.max },
    width,
    height: width < 420 ? 150 : 170,
    title: `${s.name}: value over the last 24 hours`,
    description,
    formatTime: (ms) => hourFormat.format(ms),
  });
  card.chart.replaceChildren(svg, h('figcaption', {}, `Value over the last 24 hours (${changes} change${changes === 1 ? '' : 's'}); dashed lines: bounds`));
}

// ---------------------------------------------------------------------------------------------
// Commands

/** Runs one command of a card: one at a time, its outcome in the card's status or error line. */
async function command(card: Card, run: () => Promise<string>): Promise<void> {
  if (card.root.dataset.busy === 'true') return;
  card.root.dataset.busy = 'true';
  card.root.setAttribute('aria-busy', 'true');
  card.status.textContent = '';
  card.error.textContent = '';
  const mine = session;
  try {
    const done = await run();
    if (mine === session) card.status.textContent = done;
  } catch (err) {
    if (mine !== session) return;
    if (err instanceof ApiError && err.unauthorized) return unauthorized();
    card.error.replaceChildren(h('strong', {}, err instanceof ApiError && err.status !== 0 ? `${err.code}: ` : 'Failed: '), err instanceof ApiError ? err.message : describe(err));
  } finally {
    delete card.root.dataset.busy;
    card.root.removeAttribute('aria-busy');
  }
}

function path(name: string, action: string): string {
  return `/api/v1/targets/${encodeURIComponent(name)}/${action}`;
}

async function scaleTarget(name: string, card: Card): Promise<void> {
  await command(card, async () => {
    const raw = card.scaleInput.value.trim();
    const to = Number(raw);
    if (raw === '' || !Number.isInteger(to) || to < 0) throw new Error('enter a whole number, 0 or more');
    const answer = await api<{ accepted: boolean; pending: { count: number } }>('POST', path(name, 'scale'), { to });
    card.scaleInput.value = '';
    void refreshTarget(name);
    const waiting = answer.pending.count;
    return `Queued: ${name} to ${to}${waiting > 1 ? ` (${waiting} commands waiting)` : ''}.`;
  });
}

async function pauseTarget(name: string, card: Card, duration: string, direction: 'both' | 'up' | 'down', reason: string): Promise<void> {
  await command(card, async () => {
    if (duration === '') throw new Error('enter a duration such as 30m');
    const state = await api<TargetState>('POST', path(name, 'pause'), { for: duration, direction, ...(reason === '' ? {} : { reason }) });
    bump(name);
    setTarget(state);
    return state.pause === null ? `${name} is not paused.` : `Paused ${name} until ${clockFormat.format(Date.parse(state.pause.until))}.`;
  });
}

async function resumeTarget(name: string, card: Card): Promise<void> {
  if (targets.get(name)?.pause === null) {
    card.error.textContent = '';
    card.status.textContent = `${name} is not paused through the API; nothing to resume.`;
    return;
  }
  await command(card, async () => {
    const state = await api<TargetState>('POST', path(name, 'resume'));
    bump(name);
    setTarget(state);
    return `Resumed ${name}.`;
  });
}

/** Fetches one target's state now (after a command), unless a newer one arrives meanwhile. */
async function refreshTarget(name: string): Promise<void> {
  const mine = session;
  const version = stateVersion.get(name) ?? 0;
  try {
    const state = await api<TargetState>('GET', `/api/v1/targets/${encodeURIComponent(name)}`);
    if (mine !== session || (stateVersion.get(name) ?? 0) !== version) return;
    setTarget(state);
  } catch (err) {
    if (mine === session) failed(err, `Cannot refresh ${name}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Events table

function renderFilterTargets(): void {
  const names = new Set(targets.keys());
  for (const e of events.values()) names.add(e.target);
  const wanted = ['', ...[...names].sort()];
  const have = [...ui.filterTarget.options].map((o) => o.value);
  if (wanted.length === have.length && wanted.every((v, i) => v === have[i])) return;
  const selected = ui.filterTarget.value;
  ui.filterTarget.replaceChildren(...wanted.map((v) => h('option', { value: v }, v === '' ? 'All targets' : v)));
  ui.filterTarget.value = wanted.includes(selected) ? selected : '';
}

function renderEvents(): void {
  const target = ui.filterTarget.value;
  const kind = ui.filterKind.value;
  const matching = sortedEvents().filter((e) => (target === '' || e.target === target) && (kind === '' || e.kind === kind));
  const shown = matching.slice(0, ROWS_SHOWN);
  ui.eventsBody.replaceChildren(
    ...(shown.length === 0
      ? [h('tr', { role: 'row' }, h('td', { role: 'cell', colspan: 6, class: 'empty' }, events.size === 0 ? 'No events yet.' : 'No events match the filters.'))]
      : shown.map(eventRow)),
  );
  ui.eventsCount.textContent = matching.length > shown.length ? `Showing the newest ${shown.length} of ${matching.length}.` : `${matching.length} event${matching.length === 1 ? '' : 's'}.`;
}

function eventRow(e: ScalingEvent): HTMLTableRowElement {
  const detail = e.skipReason ?? e.errorCode;
  const change = e.to === null ? '—' : e.from === null || e.from === e.to ? String(e.to) : `${e.from} → ${e.to}`;
  return h(
    'tr',
    { role: 'row', 'data-event': e.id, 'data-kind': e.kind, 'data-target': e.target },
    h('td', { role: 'cell', 'data-label': 'Time' }, when(e.at, false)),
    h('td', { role: 'cell', 'data-label': 'Target' }, e.target),
    h('td', { role: 'cell', 'data-label': 'Kind' }, h('span', { class: `kind kind-${e.kind}` }, e.kind), detail ? ` ${detail}` : null, e.dryRun ? muted(' (preview)') : null),
    h('td', { role: 'cell', 'data-label': 'Change', class: 'num' }, change),
    h('td', { role: 'cell', 'data-label': 'Reason', class: 'reason-cell' }, e.reason),
    h('td', { role: 'cell', 'data-label': 'Source' }, e.source),
  );
}

// ---------------------------------------------------------------------------------------------
// Wiring

function boot(): void {
  for (const kind of EVENT_KINDS) ui.filterKind.append(h('option', { value: kind }, kind));
  ui.filterTarget.addEventListener('change', renderEvents);
  ui.filterKind.addEventListener('change', renderEvents);
  ui.loginForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void login();
  });
  ui.logout.addEventListener('click', () => {
    tearDown();
    setToken(null);
    ui.loginError.textContent = '';
    void start().then(() => {
      if (phase === 'login') ui.loginError.textContent = 'Logged out.';
    });
  });
  // Relative times ("in 5 minutes") and the chart's window move with the clock.
  setInterval(() => {
    if (phase !== 'dashboard') return;
    for (const [name, card] of cards) {
      const state = targets.get(name);
      if (state !== undefined && card.root.dataset.busy !== 'true') updateCard(card, state);
    }
    renderEvents();
  }, 30_000);
  void start();
}

async function login(): Promise<void> {
  const token = ui.loginToken.value.trim();
  if (token === '') {
    ui.loginError.textContent = 'Enter the token.';
    ui.loginToken.focus();
    return;
  }
  ui.loginForm.setAttribute('aria-busy', 'true');
  try {
    await api<unknown>('GET', '/api/v1/targets', undefined, token);
  } catch (err) {
    ui.loginError.textContent = err instanceof ApiError && err.unauthorized ? 'That token was refused.' : describe(err);
    ui.loginToken.select();
    ui.loginToken.focus();
    return;
  } finally {
    ui.loginForm.removeAttribute('aria-busy');
  }
  setToken(token);
  ui.loginToken.value = '';
  ui.loginError.textContent = '';
  await start();
}

boot();

/**
 * The live stream over a real socket with a plain HTTP client: events arrive as they happen,
 * a reconnect with Last-Event-ID misses nothing, an id it cannot replay gets a reset, and the
 * API's credentials apply.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { STATE_INTERVAL_MS, StreamHub } from '../../src/http/stream.js';
import { EventBus } from '../../src/observe/bus.js';
import type { ScalingEvent, TargetState } from '../../src/types.js';
import { makeTestApp, TEST_AUTH, type TestApp } from '../support/http.js';
import { makeEvent } from '../unit/store-fixtures.js';

const AUTH = { authorization: `Bearer ${TEST_AUTH.apiToken}` };

interface Frame {
  id: string | null;
  event: string;
  data: string;
}

/** An open stream: frames as they arrive, and a way to wait for the next ones. */
class Reader {
  readonly frames: Frame[] = [];
  #buffer = '';
  #waiters: (() => void)[] = [];
  constructor(private readonly controller: AbortController) {}

  feed(text: string): void {
    this.#buffer += text;
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) !== -1) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const lines = block.split('\n').filter((l) => !l.startsWith(':'));
      if (lines.length === 0) continue;
      const field = (name: string) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2) ?? null;
      this.frames.push({ id: field('id'), event: field('event') ?? 'message', data: field('data') ?? '' });
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  async until(check: (frames: Frame[]) => boolean, timeoutMs = 1000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this.frames)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`not within ${timeoutMs} ms: ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.controller.abort();
  }
}

let t: TestApp;
let app: FastifyInstance;
let bus: EventBus;
let url: string;
const readers: Reader[] = [];

async function start(): Promise<void> {
  t = await makeTestApp();
  bus = new EventBus();
  const state = async (name: string): Promise<TargetState | null> => t.engine.state(name);
  app = buildApp({ ...t.deps, stream: new StreamHub(bus, state) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

async function open(headers: Record<string, string> = AUTH): Promise<{ status: number; reader: Reader }> {
  const controller = new AbortController();
  const res = await fetch(`${url}/api/v1/stream`, { headers, signal: controller.signal });
  const reader = new Reader(controller);
  readers.push(reader);
  if (res.body !== null && res.status === 200) {
    void (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) reader.feed(decoder.decode(chunk, { stream: true }));
      } catch {
        // aborted by the test
      }
    })();
  }
  return { status: res.status, reader };
}

afterEach(async () => {
  for (const r of readers.splice(0)) r.close();
  await app.close();
  await t.close();
});

const publish = (over: Partial<ScalingEvent> = {}): ScalingEvent => {
  const event = makeEvent(over);
  bus.publish({ type: 'event', event });
  return event;
};

describe('GET /api/v1/stream', () => {
  it('sends an event within a second of it happening, then the state of its target', async () => {
    await start();
    const { status, reader } = await open();
    expect(status).toBe(200);
    const event = publish({ target: 'web' });
    await reader.until((f) => f.some((x) => x.event === 'event') && f.some((x) => x.event === 'state'));
    const sent = reader.frames.find((f) => f.event === 'event');
    expect(JSON.parse(sent?.data ?? '{}')).toStrictEqual(event);
    expect(JSON.parse(reader.frames.find((f) => f.event === 'state')?.data ?? '{}')).toMatchObject({ name: 'web' });
  });

  it("a flood of changes to one target (each queued command in a turn of its own) sends its state once per round, not once per change", async () => {
    await start();
    const { reader } = await open();
    const states = () => reader.frames.filter((f) => f.event === 'state').length;
    for (let i = 0; i < 50; i++) {
      bus.publish({ type: 'target', target: 'web', current: 3, desired: 3, signals: { up: 0, down: 0 } });
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    // The first change's round at once, then one round for the 49 after it.
    await reader.until(() => states() >= 2, 5 * STATE_INTERVAL_MS);
    expect(states()).toBe(2);
  });

  it('keeps and builds nothing before the first stream opens; that stream gets the latest state of what changed', async () => {
    t = await makeTestApp();
    bus = new EventBus();
    const built: string[] = [];
    const state = async (name: string): Promise<TargetState | null> => {
      built.push(name);
      return t.engine.state(name);
    };
    const hub = new StreamHub(bus, state);
    app = buildApp({ ...t.deps, stream: hub });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    for (let i = 0; i < 50; i++) bus.publish({ type: 'target', target: 'web', current: i, desired: null, signals: { up: 0, down: 0 } });
    // Nor does it keep events for replay before anyone watched: no id of this boot was given out.
    for (let i = 0; i < 20; i++) publish({ target: 'web' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(built).toEqual([]);
    expect(hub.buffered).toBe(0);
    const { reader } = await open();
    await reader.until((f) => f.some((x) => x.event === 'state'));
    expect(built).toEqual(['web']);
    expect(JSON.parse(reader.frames.find((f) => f.event === 'state')?.data ?? '{}')).toMatchObject({ name: 'web' });
  });

  it('a reconnect with Last-Event-ID gets exactly what it missed, in order', async () => {
    await start();
    const first = await open();
    publish();
    await first.reader.until((f) => f.some((x) => x.event === 'event'));
    const last = first.reader.frames.at(-1)?.id as string;
    first.reader.close();
    const missed = [publish(), publish(), publish()];
    const again = await open({ ...AUTH, 'last-event-id': last });
    await again.reader.until((f) => f.filter((x) => x.event === 'event').length === 3);
    expect(again.reader.frames.filter((f) => f.event === 'event').map((f) => (JSON.parse(f.data) as ScalingEvent).id)).toEqual(missed.map((e) => e.id));
    expect(again.reader.frames.some((f) => f.event === 'reset')).toBe(false);
  });

  it.each([['an id of another boot', 'abcdef12-5'], ['garbage', 'not-an-id'], ['an id from the future', 'x']])('%s gets a reset', async (_name, id) => {
    await start();
    const { reader } = await open({ ...AUTH, 'last-event-id': id });
    await reader.until((f) => f.some((x) => x.event === 'reset'));
  });

  it('needs the API credentials', async () => {
    await start();
    expect((await open({})).status).toBe(401);
  });

  it('closing the server ends the streams instead of waiting on them', async () => {
    await start();
    await open();
    await app.close();
  });
});

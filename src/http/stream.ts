/**
 * The live stream (`GET /api/v1/stream`): Server-Sent Events of what the engine publishes, for
 * the status page and for scripts. `event: event` carries a history event as it is recorded,
 * `event: state` a target's state when it changes, `event: reset` tells a client that what it
 * missed cannot be replayed (refetch everything); `: ping` comments keep proxies from closing
 * an idle connection.
 *
 * Why ids carry a boot id: every message gets `<boot>-<seq>`, and the last 10,000 are kept, so a
 * client reconnecting with `Last-Event-ID` gets exactly what it missed. An id from another
 * process (the daemon restarted) or older than the buffer gets a `reset` instead of a gap.
 *
 * A slow client is never waited for: past 1 MiB of unsent data its connection is closed, and it
 * reconnects with its last id.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { EventBus } from '../observe/bus.js';
import type { TargetState } from '../types.js';

/** Messages kept for replay. */
export const STREAM_BUFFER = 10_000;
/** Unsent bytes past which a client is dropped. */
const MAX_BUFFERED = 1024 * 1024;
/** How often an idle stream gets a comment. */
const HEARTBEAT_MS = 15_000;
/**
 * The shortest time between two rounds of states. A state lists its target's queued commands and
 * signals, so one per change under a flood (each of N queued commands in a turn of its own) sent
 * and kept N states of up to N entries: 400 commands wrote 17.8 MB. A round sends each changed
 * target's latest state once.
 */
export const STATE_INTERVAL_MS = 250;

interface Message {
  seq: number;
  text: string;
}

/** Fans the engine's news out to every open stream, with a replay buffer. */
export class StreamHub {
  readonly #boot = randomUUID().slice(0, 8);
  readonly #buffer: Message[] = [];
  readonly #clients = new Set<ServerResponse>();
  readonly #dirty = new Set<string>();
  #seq = 0;
  #flushing = false;
  /** When the last round of states was sent (performance.now), for STATE_INTERVAL_MS. */
  #lastRound = Number.NEGATIVE_INFINITY;
  /**
   * Set when the first stream opens. Before it nothing is kept: a daemon nobody watches keeps no
   * 10,000 messages (a storm's events, in the storm's memory), and an id a client could ask to
   * replay from is only ever given to a stream, after this is set.
   */
  #watched = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    bus: EventBus,
    private readonly state: (name: string) => Promise<TargetState | null>,
  ) {
    bus.subscribe((msg) => {
      if (msg.type === 'event') {
        if (this.#watched) this.#send('event', JSON.stringify(msg.event));
        // Its target's state moved with it (value, last event): sent right after.
        this.#stateSoon(msg.event.target);
      } else if (msg.type === 'target') this.#stateSoon(msg.target);
    });
  }

  /** How many streams are open. */
  get clients(): number {
    return this.#clients.size;
  }

  /** How many messages are kept for replay. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Serves one stream on a raw response, replaying what `lastEventId` missed. */
  open(res: ServerResponse, lastEventId: string | undefined): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': pulumiscale stream\n\n');
    if (lastEventId !== undefined) {
      const missed = this.#since(lastEventId);
      if (missed === null) res.write(frame(`${this.#boot}-${this.#seq}`, 'reset', '{}'));
      else for (const m of missed) res.write(m.text);
    }
    this.#watched = true;
    this.#clients.add(res);
    res.on('close', () => this.#clients.delete(res));
    this.#flushSoon();
    this.#timer ??= setInterval(() => this.#beat(), HEARTBEAT_MS).unref();
  }

  /** Ends every stream (the server closes): clients reconnect elsewhere or later. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    // Destroyed, not ended: an ended stream's socket would stay open as an idle keep-alive one.
    for (const res of this.#clients) res.destroy();
    this.#clients.clear();
  }

  /** The messages after `id`, or null when they cannot be known (another boot, too old, garbage). */
  #since(id: string): Message[] | null {
    const m = /^([0-9a-f]{8})-(\d+)$/.exec(id.trim());
    if (m === null || m[1] !== this.#boot) return null;
    const seq = Number(m[2]);
    const oldest = this.#buffer[0]?.seq ?? this.#seq + 1;
    if (seq > this.#seq || seq < oldest - 1) return null;
    return this.#buffer.filter((msg) => msg.seq > seq);
  }

  #send(event: string, data: string): void {
    if (!this.#watched) return;
    const seq = ++this.#seq;
    const text = frame(`${this.#boot}-${seq}`, event, data);
    this.#buffer.push({ seq, text });
    if (this.#buffer.length > STREAM_BUFFER) this.#buffer.shift();
    for (const res of this.#clients) {
      if (res.writableLength > MAX_BUFFERED) {
        // Too far behind: it reconnects with its last id and catches up from the buffer.
        res.destroy();
        this.#clients.delete(res);
        continue;
      }
      res.write(text);
    }
  }

  /**
   * A target's state is sent once per round (a turn of the event loop, at most one round per
   * STATE_INTERVAL_MS) however many changes it had in it. While no stream is open it is not
   * built at all (a state lists every signal: under a storm, building it at each change cost
   * more than storing the alerts); the next stream to open gets the latest state of every
   * target that changed meanwhile.
   */
  #stateSoon(name: string): void {
    this.#dirty.add(name);
    this.#flushSoon();
  }

  #flushSoon(): void {
    if (this.#flushing || this.#clients.size === 0 || this.#dirty.size === 0) return;
    this.#flushing = true;
    const round = () => {
      this.#flushing = false;
      this.#lastRound = performance.now();
      const names = [...this.#dirty];
      this.#dirty.clear();
      void (async () => {
        for (const n of names) {
          const s = await this.state(n).catch(() => null);
          if (s !== null) this.#send('state', JSON.stringify(s));
        }
      })();
    };
    const wait = this.#lastRound + STATE_INTERVAL_MS - performance.now();
    if (wait <= 0) setImmediate(round);
    else setTimeout(round, wait).unref();
  }

  #beat(): void {
    for (const res of this.#clients) res.write(': ping\n\n');
  }
}

function frame(id: string, event: string, data: string): string {
  // JSON has no raw newlines, so one data line holds it.
  return `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`;
}

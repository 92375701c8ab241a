/**
 * Follow-ups: a chat command answers at once (Slack wants an answer within 3 seconds), but the
 * change it queued ends later. A follow-up remembers where to say how it ended (Slack's
 * `response_url`) and posts there when the event that records the command arrives.
 *
 * Kept in memory on purpose: a response URL is valid for 30 minutes only, and the outcome is
 * also in the history and in the configured notifications, so a restart losing one costs little.
 */
import type { Logger } from 'pino';
import type { ScalingEvent } from '../../types.js';
import { describeEvent } from '../formats/describe.js';
import { mrkdwnWithin } from '../formats/slack.js';

/** Posts a JSON body to a response URL; rejects on a network error. */
export type ResponsePoster = (url: string, body: unknown) => Promise<void>;

/** How long Slack accepts posts to a response URL. */
export const RESPONSE_URL_TTL_MS = 30 * 60_000;

/** The most follow-ups remembered at once; the oldest goes first beyond it. */
const MAX_WATCHED = 10_000;

/** Remembers where to report each command's outcome, and reports it. */
export class Followups {
  readonly #watched = new Map<string, { url: string; until: number }>();

  constructor(
    private readonly post: ResponsePoster,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Reports the outcome of command `commandId` to `url` when its event arrives. */
  watch(commandId: string, url: string): void {
    if (this.#watched.size >= MAX_WATCHED) {
      const oldest = this.#watched.keys().next();
      if (oldest.done !== true) this.#watched.delete(oldest.value);
    }
    this.#watched.set(commandId, { url, until: this.now() + RESPONSE_URL_TTL_MS });
  }

  /** Called for every recorded event (a bus subscriber); never throws, never waits. */
  onEvent(event: ScalingEvent): void {
    if (this.#watched.size === 0) return;
    for (const id of event.commands ?? (event.intentId ? [event.intentId] : [])) {
      const watch = this.#watched.get(id);
      if (watch === undefined) continue;
      // A cleared stale lock comes before the command's own event: not its end.
      if (event.kind === 'unlocked') continue;
      this.#watched.delete(id);
      if (watch.until < this.now()) continue;
      const words = describeEvent(event, null);
      const text = mrkdwnWithin(`${words.title}: ${words.summary}\n${words.reason}`, 3000);
      this.post(watch.url, { response_type: 'in_channel', replace_original: false, text }).catch((err: unknown) => {
        this.logger.warn({ eventId: event.id, target: event.target, err: err instanceof Error ? err.message : String(err) }, 'could not post a chat follow-up');
      });
    }
  }
}

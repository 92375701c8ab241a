/**
 * The Microsoft Teams format: a message for a Workflows webhook (the "When a Teams webhook
 * request is received" trigger), which posts the Adaptive Card it carries. The retired Office 365
 * connector's MessageCard is not accepted there, so this sends an Adaptive Card only.
 *
 * Teams refuses a message over 28 KB, counted on the whole request, so the card is built with
 * generous room for the long texts (the reason, the signals) and rebuilt with less until the
 * payload fits. Bytes, not characters: an emoji is 4 bytes of UTF-8, a control character 6 once
 * JSON escapes it.
 */
import type { ScalingEvent } from '../../types.js';
import { cut, describeEvent, joinWithin, type Description, type Tone } from './describe.js';
import type { FormatContext, OutgoingMessage } from './index.js';

/** The limits this format keeps to. */
export const TEAMS_LIMITS = {
  /**
   * The payload's budget in bytes of UTF-8: Teams takes under 28 KB (28,672 bytes); the rest is
   * a margin for what the Workflow adds around the card.
   */
  payloadBytes: 28_000,
  /** The reason's room on the first try, in characters. */
  reason: 8000,
  /** The signal list's room on the first try, in characters. */
  signals: 8000,
  /** The least room a long text is cut to before the card drops the lists altogether. */
  floor: 64,
} as const;

/** Adaptive Card text colours per tone. */
const COLORS: Record<Tone, string> = { good: 'Good', info: 'Accent', warning: 'Warning', danger: 'Attention', neutral: 'Default' };

/** How much room the long texts get on one try; `lists: false` leaves the facts and signals out. */
interface Room {
  reason: number;
  signals: number;
  fact: number;
  lists: boolean;
}

const textBlock = (text: string, extra: Record<string, unknown> = {}) => ({ type: 'TextBlock', text, wrap: true, ...extra });

function cardBody(event: ScalingEvent, d: Description, room: Room): Record<string, unknown>[] {
  const body: Record<string, unknown>[] = [
    textBlock(cut(d.title, 200), { size: 'Medium', weight: 'Bolder', color: COLORS[d.tone] }),
    textBlock(d.summary),
    textBlock(`**Why:** ${cut(d.reason || 'not given', room.reason)}`),
  ];
  if (room.lists && d.facts.length > 0) {
    body.push({ type: 'FactSet', facts: d.facts.map((f) => ({ title: f.label, value: cut(f.value, room.fact) })) });
  }
  if (room.lists && d.signals.length > 0) {
    // Adaptive Card markdown joins single newlines; a blank line keeps one signal per line.
    body.push(textBlock(`**Signals (${d.signals.length}):**\n\n${joinWithin(d.signals, room.signals, '\n\n')}`));
  }
  const a = d.approval;
  if (a) {
    const decided = a.decidedBy ? `; decided by ${a.decidedBy}` : '';
    body.push(textBlock(`**Approval ${cut(a.id, 64)}:** ${a.status}${decided}. Preview changes: ${a.changes}. Expires ${a.expires}.`));
  }
  body.push(textBlock(`Event ${cut(event.id, 100)} at ${cut(event.at, 64)}`, { isSubtle: true, size: 'Small' }));
  return body;
}

function payload(event: ScalingEvent, d: Description, room: Room, withLink: boolean): string {
  const content: Record<string, unknown> = {
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    type: 'AdaptiveCard',
    version: '1.4',
    body: cardBody(event, d, room),
  };
  if (withLink && d.link) content.actions = [{ type: 'Action.OpenUrl', title: 'Scaling history', url: d.link }];
  return JSON.stringify({
    type: 'message',
    attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null, content }],
  });
}

const fits = (body: string) => Buffer.byteLength(body, 'utf8') <= TEAMS_LIMITS.payloadBytes;

/** The Teams Workflows webhook request for `event`, within 28 KB. */
export function teamsMessage(event: ScalingEvent, ctx: FormatContext): OutgoingMessage {
  const d = describeEvent(event, ctx.publicUrl);
  const headers = { 'content-type': 'application/json' };
  let room: Room = { reason: TEAMS_LIMITS.reason, signals: TEAMS_LIMITS.signals, fact: 256, lists: true };
  // Halving converges in a few tries: at worst (control characters, 6 bytes each) the floor is
  // reached after about seven.
  for (;;) {
    const body = payload(event, d, room, true);
    if (fits(body)) return { headers, body };
    if (room.reason <= TEAMS_LIMITS.floor && room.signals <= TEAMS_LIMITS.floor && room.fact <= TEAMS_LIMITS.floor) break;
    const half = (n: number) => Math.max(TEAMS_LIMITS.floor, Math.floor(n / 2));
    room = { reason: half(room.reason), signals: half(room.signals), fact: half(room.fact), lists: true };
  }
  // Still too big at the floor: the lists go, then the link (an outsize configured URL).
  const bare: Room = { reason: TEAMS_LIMITS.floor, signals: 0, fact: 0, lists: false };
  const body = payload(event, d, bare, true);
  return { headers, body: fits(body) ? body : payload(event, d, bare, false) };
}

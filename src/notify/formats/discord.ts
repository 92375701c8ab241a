/**
 * The Discord format: an execute-webhook request, `{ content, embeds, allowed_mentions }`, with
 * one embed that holds the message (title, description, fields, the history link).
 *
 * Discord refuses a message (400, "Invalid Form Body") when any embed text is over its limit or
 * all embed texts together pass 6,000 characters, so the short parts are bounded first and the
 * description (the reason) takes the room that is left. `allowed_mentions` with an empty `parse`
 * makes Discord ping no one, whatever `@everyone` or `<@id>` a reason carries.
 */
import type { ScalingEvent } from '../../types.js';
import { cut, describeEvent, joinWithin, type Tone } from './describe.js';
import type { FormatContext, OutgoingMessage } from './index.js';

/** Discord's documented message and embed limits, in characters. */
export const DISCORD_LIMITS = {
  content: 2000,
  title: 256,
  description: 4096,
  fields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footer: 2048,
  /** All embed texts of a message together: titles, descriptions, field names and values, footers, authors. */
  total: 6000,
} as const;

/** Embed colours per tone (RGB as an integer, as Discord takes it). */
const COLORS: Record<Tone, number> = { good: 0x2eb67d, info: 0x5865f2, warning: 0xecb22e, danger: 0xe01e5a, neutral: 0x99aab5 };

/** One embed field. */
interface Field {
  name: string;
  value: string;
  inline: boolean;
}

/** Discord refuses an empty field value. */
const orDash = (text: string) => (text.trim() === '' ? '—' : text);

function fields(d: ReturnType<typeof describeEvent>): Field[] {
  const list: Field[] = d.facts.map((f) => ({
    name: cut(f.label, DISCORD_LIMITS.fieldName),
    value: orDash(cut(f.value, DISCORD_LIMITS.fieldValue)),
    inline: true,
  }));
  if (d.signals.length > 0) {
    list.push({ name: `Signals (${d.signals.length})`, value: orDash(joinWithin(d.signals, DISCORD_LIMITS.fieldValue)), inline: false });
  }
  const a = d.approval;
  if (a) {
    const lines = [`${a.status} (${a.id})`, `Preview changes: ${a.changes}`, `Expires ${a.expires}`];
    if (a.decidedBy) lines.push(`Decided by ${a.decidedBy}`);
    list.push({ name: 'Approval', value: cut(lines.join('\n'), DISCORD_LIMITS.fieldValue), inline: false });
  }
  return list.slice(0, DISCORD_LIMITS.fields);
}

/** Discord reads `timestamp` as ISO-8601 and refuses anything else, so a bad one is left out. */
function timestamp(at: string): string | undefined {
  const ms = Date.parse(at);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

/** The Discord webhook request for `event`. */
export function discordMessage(event: ScalingEvent, ctx: FormatContext): OutgoingMessage {
  const d = describeEvent(event, ctx.publicUrl);
  const title = cut(d.title, DISCORD_LIMITS.title);
  const footer = cut(`event ${event.id}`, 128);
  const embedFields = fields(d);
  const used = title.length + footer.length + embedFields.reduce((n, f) => n + f.name.length + f.value.length, 0);
  // The short parts are bounded (facts 256, lists 1,024), so the description always keeps room.
  const room = Math.max(0, Math.min(DISCORD_LIMITS.description, DISCORD_LIMITS.total - used));
  // The summary is the content (what a push notification shows), so the embed goes on with why.
  const head = '**Why:** ';
  const description = head + cut(d.reason || 'not given', room - head.length);
  const embed: Record<string, unknown> = {
    title,
    description: orDash(description),
    color: COLORS[d.tone],
    fields: embedFields,
    footer: { text: footer },
  };
  const ts = timestamp(event.at);
  if (ts) embed.timestamp = ts;
  if (d.link) embed.url = d.link;
  return {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      content: cut(d.summary, DISCORD_LIMITS.content),
      embeds: [embed],
      allowed_mentions: { parse: [] },
    }),
  };
}

/**
 * The Slack format: an incoming-webhook message, `{ text, blocks }`. `text` is the plain
 * fallback Slack shows in notifications and to clients without Block Kit; `blocks` is the
 * message itself (a header, sections, a context line, and for a change that waits for approval
 * the Approve and Reject buttons).
 *
 * Slack refuses the whole message (400 `invalid_payload`/`invalid_blocks`) when one block breaks
 * a limit, so every text is cut to its block's limit here. Text in `mrkdwn` is escaped (`&`, `<`,
 * `>`): a reason that says `<!channel>` must not ping a channel, nor `<http://…|x>` make a link.
 */
import type { ScalingEvent } from '../../types.js';
import { ELLIPSIS, cut, describeEvent, joinWithin, type Description } from './describe.js';
import type { FormatContext, OutgoingMessage } from './index.js';

/** Slack's documented Block Kit limits, in characters. */
export const SLACK_LIMITS = {
  /** A message's blocks. */
  blocks: 50,
  /** A header block's plain_text. */
  header: 150,
  /** A section block's text. */
  sectionText: 3000,
  /** A section block's fields. */
  fields: 10,
  /** One field's text. */
  fieldText: 2000,
  /** A context block's elements. */
  contextElements: 10,
  /** A button's label. */
  buttonText: 75,
  /** A button's value. */
  buttonValue: 2000,
  /**
   * The fallback `text`. Slack takes far more (it truncates past 40,000), but the fallback is
   * read in a notification banner: the start of the reason is enough.
   */
  fallback: 3000,
} as const;

/** The action ids of the approval buttons; the interaction endpoint dispatches on them. */
export const SLACK_ACTIONS = { approve: 'pulumiscale_approve', reject: 'pulumiscale_reject' } as const;

/** `text` with `&`, `<` and `>` escaped as Slack's mrkdwn requires. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * `text` escaped for mrkdwn, within `max` characters after escaping. It cuts between escaped
 * characters, never inside `&amp;` (a cut entity shows as raw `&am`) nor inside a surrogate pair.
 */
export function mrkdwnWithin(text: string, max: number): string {
  const escaped = escapeMrkdwn(text);
  if (escaped.length <= max) return escaped;
  const room = max - ELLIPSIS.length;
  let out = '';
  // for…of walks code points, so a pair is taken whole or not at all.
  for (const ch of text) {
    const piece = escapeMrkdwn(ch);
    if (out.length + piece.length > room) break;
    out += piece;
  }
  return room > 0 ? out + ELLIPSIS : '';
}

type TextObject = { type: 'mrkdwn'; text: string } | { type: 'plain_text'; text: string; emoji?: boolean };
type Block = Record<string, unknown>;

const mrkdwn = (text: string): TextObject => ({ type: 'mrkdwn', text });
const section = (text: string): Block => ({ type: 'section', text: mrkdwn(text) });

/** The first section: what happened and why; the reason takes whatever room the summary leaves. */
function mainSection(d: Description): Block {
  const head = `${escapeMrkdwn(d.summary)}\n*Why:* `;
  return section(head + mrkdwnWithin(d.reason || 'not given', SLACK_LIMITS.sectionText - head.length));
}

function factsSection(d: Description): Block | null {
  if (d.facts.length === 0) return null;
  const fields = d.facts.slice(0, SLACK_LIMITS.fields).map((f) => {
    const label = `*${escapeMrkdwn(f.label)}*\n`;
    return mrkdwn(label + mrkdwnWithin(f.value, SLACK_LIMITS.fieldText - label.length));
  });
  return { type: 'section', fields };
}

function signalsSection(d: Description): Block | null {
  if (d.signals.length === 0) return null;
  const head = `*Signals (${d.signals.length}):*\n`;
  // Escaped line by line so that joinWithin drops whole lines, never half an entity.
  return section(head + joinWithin(d.signals.map(escapeMrkdwn), SLACK_LIMITS.sectionText - head.length));
}

/** The approval's words, and while it is pending, the buttons that decide it. */
function approvalBlocks(event: ScalingEvent, d: Description): Block[] {
  const a = d.approval;
  if (!a) return [];
  const lines = [
    `*Approval:* ${escapeMrkdwn(a.status)}`,
    `*Preview changes:* ${escapeMrkdwn(a.changes)}`,
    `*Expires:* ${escapeMrkdwn(a.expires)}`,
    ...(a.decidedBy ? [`*Decided by:* ${escapeMrkdwn(a.decidedBy)}`] : []),
  ];
  const blocks: Block[] = [section(cut(lines.join('\n'), SLACK_LIMITS.sectionText))];
  if (event.kind === 'awaiting-approval') {
    const button = (label: string, actionId: string, style: 'primary' | 'danger') => ({
      type: 'button',
      text: { type: 'plain_text', text: label, emoji: false },
      action_id: actionId,
      // The id whole: a cut id would approve nothing. It is a UUID, far within the limit.
      value: a.id,
      style,
    });
    blocks.push({
      type: 'actions',
      block_id: 'pulumiscale_approval',
      elements: [button('Approve', SLACK_ACTIONS.approve, 'primary'), button('Reject', SLACK_ACTIONS.reject, 'danger')],
    });
  }
  return blocks;
}

/** The closing context line: the history link, and the event's id and time. */
function contextBlock(event: ScalingEvent, d: Description): Block {
  const elements: TextObject[] = [];
  if (d.link) elements.push(mrkdwn(`<${escapeMrkdwn(d.link)}|Scaling history>`));
  elements.push(mrkdwn(`Event ${mrkdwnWithin(event.id, 100)} at ${mrkdwnWithin(event.at, 64)}`));
  return { type: 'context', elements };
}

/** The Slack incoming-webhook request for `event`. */
export function slackMessage(event: ScalingEvent, ctx: FormatContext): OutgoingMessage {
  const d = describeEvent(event, ctx.publicUrl);
  const blocks = [
    { type: 'header', text: { type: 'plain_text', text: cut(d.title, SLACK_LIMITS.header), emoji: true } },
    mainSection(d),
    factsSection(d),
    signalsSection(d),
    ...approvalBlocks(event, d),
    contextBlock(event, d),
  ].filter((b): b is Block => b !== null);
  const fallbackHead = `${escapeMrkdwn(d.title)}: `;
  const text = fallbackHead + mrkdwnWithin(d.reason, SLACK_LIMITS.fallback - fallbackHead.length);
  return {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text, blocks: blocks.slice(0, SLACK_LIMITS.blocks) }),
  };
}

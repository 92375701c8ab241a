/**
 * The chat command language, the same on Slack and Discord: the text a person types after the
 * slash command, parsed into a {@link ChatCommand}. Pure: what a command does, and whether the
 * person may do it, is decided elsewhere.
 *
 * Anything that does not parse becomes `help` with a short problem, so the reply can say what
 * was wrong next to the usage instead of failing silently.
 */
import { MAX_DURATION_MS, MAX_DURATION_TEXT, parseDuration } from '../../config/duration.js';
import { TARGET_NAME } from '../../config/schema.js';

/** A parsed chat command. `help` with a problem means the text did not parse. */
export type ChatCommand =
  | { kind: 'status'; target: string | null }
  | { kind: 'scale'; target: string; to?: number; by?: number; dryRun: boolean }
  | { kind: 'pause'; target: string; forMs: number | null; forText: string | null; direction: 'both' | 'up' | 'down' }
  | { kind: 'resume'; target: string }
  | { kind: 'history'; target: string }
  /** A verdict on a change waiting for approval, by its id (for platforms without buttons). */
  | { kind: 'approve' | 'reject'; id: string }
  | { kind: 'help'; problem: string | null };

/** The longest command text parsed; longer text is refused before any parsing. */
export const MAX_COMMAND_TEXT = 500;

/** Usage of every command, one line each, for help replies. */
export const HELP_TEXT = [
  'PulumiScale commands:',
  '  status [target]                               show every target, or one',
  '  scale <target> to <n> [dry-run]               set the value to n (0 or more)',
  '  scale <target> by <n> [dry-run]               change the value by n (e.g. by +2, by -1)',
  '  pause <target> [for <duration>] [up|down]     hold changes, e.g. for 30m or 2h, one way or both',
  '  resume <target>                               end a pause',
  '  history <target>                              show recent changes',
  '  approve <id> | reject <id>                    decide a change waiting for approval',
  '  help                                          show this text',
].join('\n');

/** The reply to a `help` command: the usage, after the problem when there is one. */
export function helpReply(problem: string | null): string {
  return problem === null ? HELP_TEXT : `${problem}\n\n${HELP_TEXT}`;
}

const DRY_RUN_WORDS = new Set(['dry-run', '--dry-run', 'dryrun']);

/** A parse failure, carried as a value: the parsers below return one instead of throwing. */
interface Problem {
  why: string;
}

const fail = (why: string): Problem => ({ why });
const isProblem = (v: ChatCommand | Problem | string | number): v is Problem => typeof v === 'object' && 'why' in v;

/**
 * What was typed, made safe to echo in a reply: clipped, and with characters that Slack or
 * Discord markup gives meaning to (`<!channel>`, `@everyone`, code spans…) replaced, so that a
 * problem message can never mention a channel or break the reply's formatting.
 */
function quote(token: string): string {
  const clipped = token.length > 40 ? `${token.slice(0, 40)}…` : token;
  return `"${clipped.replace(/[^A-Za-z0-9_.,:=+\-/%#…]/g, '?')}"`;
}

function targetOf(token: string | undefined, usage: string): string | Problem {
  if (token === undefined) return fail(`missing target: ${usage}`);
  if (!TARGET_NAME.test(token)) return fail(`${quote(token)} is not a target name (letters, digits, _ . - ; at most 63 characters)`);
  return token;
}

// A whole number with an optional sign; Number() alone would also take 1e3, 0x10 and 2.0.
const INTEGER = /^[+-]?\d+$/;

function integerOf(token: string | undefined, what: string): number | Problem {
  if (token === undefined) return fail(`missing number after "${what}"`);
  if (!INTEGER.test(token)) return fail(`${quote(token)} after "${what}" is not a whole number`);
  const n = Number(token);
  if (!Number.isSafeInteger(n)) return fail(`${quote(token)} after "${what}" is too large`);
  // -0 would read back as "by 0" to the engine and print oddly; it is 0.
  return n === 0 ? 0 : n;
}

/** Text left over after a command: a problem naming the first extra word, or null. */
function extra(rest: readonly string[], usage: string): Problem | null {
  const first = rest[0];
  return first === undefined ? null : fail(`unexpected ${quote(first)}: ${usage}`);
}

const USAGE = {
  status: 'status [target]',
  scale: 'scale <target> to|by <n> [dry-run]',
  pause: 'pause <target> [for <duration>] [up|down]',
  resume: 'resume <target>',
  history: 'history <target>',
  approve: 'approve <id>',
  reject: 'reject <id>',
} as const;

/** An approval id as the daemon makes them (a UUID), or any similar short token. */
const APPROVAL_ID = /^[A-Za-z0-9-]{1,80}$/;

function parseVerdict(kind: 'approve' | 'reject', args: readonly string[]): ChatCommand | Problem {
  const id = args[0];
  if (id === undefined) return fail(`missing approval id: ${USAGE[kind]}`);
  if (!APPROVAL_ID.test(id)) return fail(`${quote(id)} is not an approval id`);
  return extra(args.slice(1), USAGE[kind]) ?? { kind, id };
}

function parseStatus(args: readonly string[]): ChatCommand | Problem {
  if (args.length === 0) return { kind: 'status', target: null };
  const target = targetOf(args[0], USAGE.status);
  if (isProblem(target)) return target;
  return extra(args.slice(1), USAGE.status) ?? { kind: 'status', target };
}

function parseScale(args: readonly string[]): ChatCommand | Problem {
  const target = targetOf(args[0], USAGE.scale);
  if (isProblem(target)) return target;
  const rest = [...args.slice(1)];
  // dry-run is only taken at the end, where the usage puts it.
  const last = rest.at(-1);
  const dryRun = last !== undefined && DRY_RUN_WORDS.has(last.toLowerCase());
  if (dryRun) rest.pop();

  const op = rest[0]?.toLowerCase();
  if (op !== 'to' && op !== 'by') {
    return fail(rest[0] === undefined ? `missing "to <n>" or "by <n>": ${USAGE.scale}` : `expected "to" or "by", not ${quote(rest[0])}: ${USAGE.scale}`);
  }
  const n = integerOf(rest[1], op);
  if (isProblem(n)) return n;
  const tail = extra(rest.slice(2), USAGE.scale);
  if (tail) return tail;
  if (op === 'to') {
    if (n < 0) return fail(`cannot scale to ${n}: the value must be 0 or more`);
    return { kind: 'scale', target, to: n, dryRun };
  }
  if (n === 0) return fail('scaling by 0 changes nothing: give a number other than 0');
  return { kind: 'scale', target, by: n, dryRun };
}

function parsePause(args: readonly string[]): ChatCommand | Problem {
  const target = targetOf(args[0], USAGE.pause);
  if (isProblem(target)) return target;
  let forMs: number | null = null;
  let forText: string | null = null;
  let direction: 'both' | 'up' | 'down' = 'both';
  // The two optional parts may come in either order, each at most once.
  for (let i = 1; i < args.length; i++) {
    const word = args[i] as string;
    const lower = word.toLowerCase();
    if (lower === 'for') {
      if (forText !== null) return fail(`"for" given twice: ${USAGE.pause}`);
      const text = args[i + 1];
      if (text === undefined) return fail(`missing duration after "for" (e.g. for 30m, for 2h)`);
      const ms = parseDuration(text);
      if (ms === null) return fail(`${quote(text)} is not a duration (use a unit, e.g. 90s, 30m, 2h, 1h30m)`);
      if (ms <= 0) return fail(`a pause for ${quote(text)} ends at once: give a longer duration`);
      if (ms > MAX_DURATION_MS) return fail(`a pause for ${quote(text)} is longer than ${MAX_DURATION_TEXT} (100 years)`);
      forMs = ms;
      forText = text;
      i++;
    } else if (lower === 'up' || lower === 'down') {
      if (direction !== 'both') return fail(`direction given twice: ${USAGE.pause}`);
      direction = lower;
    } else {
      return fail(`unexpected ${quote(word)}: ${USAGE.pause}`);
    }
  }
  return { kind: 'pause', target, forMs, forText, direction };
}

function parseOneTarget(kind: 'resume' | 'history', args: readonly string[]): ChatCommand | Problem {
  const target = targetOf(args[0], USAGE[kind]);
  if (isProblem(target)) return target;
  return extra(args.slice(1), USAGE[kind]) ?? { kind, target };
}

/**
 * Parses the text typed after the slash command. Keywords are case-insensitive, target names
 * are kept as typed; empty text or `help` asks for help, and text that does not parse is
 * `help` with the problem.
 */
export function parseChatCommand(text: string): ChatCommand {
  if (text.length > MAX_COMMAND_TEXT) return { kind: 'help', problem: `command text is longer than ${MAX_COMMAND_TEXT} characters` };
  const words = text.trim().split(/\s+/).filter((w) => w !== '');
  const [first, ...args] = words;
  if (first === undefined) return { kind: 'help', problem: null };

  let result: ChatCommand | Problem;
  switch (first.toLowerCase()) {
    case 'help':
      return { kind: 'help', problem: null };
    case 'status':
      result = parseStatus(args);
      break;
    case 'scale':
      result = parseScale(args);
      break;
    case 'pause':
      result = parsePause(args);
      break;
    case 'resume':
    case 'history':
      result = parseOneTarget(first.toLowerCase() as 'resume' | 'history', args);
      break;
    case 'approve':
    case 'reject':
      result = parseVerdict(first.toLowerCase() as 'approve' | 'reject', args);
      break;
    default:
      result = fail(`unknown command ${quote(first)}`);
  }
  return isProblem(result) ? { kind: 'help', problem: result.why } : result;
}

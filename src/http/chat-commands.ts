/**
 * Runs a parsed chat command (notify/chat/commands.ts) through the same operator actions as
 * the API (operator.ts) and words the reply. Every refusal becomes a short reply naming the
 * problem (an unknown target gets the help text too), never a stack trace: chat users see the
 * reply, not the logs.
 */
import { PulumiScaleError } from '../errors.js';
import type { ChatCommand } from '../notify/chat/commands.js';
import { helpReply } from '../notify/chat/commands.js';
import { cut } from '../notify/formats/describe.js';
import { whatHolds } from '../observe/status-table.js';
import type { Actor, ScalingEvent, TargetState } from '../types.js';
import type { AppDeps } from './deps.js';
import { pause, resume, scale } from './operator.js';

/** A reply: its text, and whether the channel sees it (an action) or only the person (a query). */
export interface ChatReply {
  text: string;
  public: boolean;
  /** The command queued, when one was (to report its outcome later). */
  commandId?: string;
}

/** How long a chat pause without `for` lasts. */
export const DEFAULT_CHAT_PAUSE = '1h';

/** Runs `command` for `actor`; resolves with the reply. Rejects only on a store outage (503). */
export async function runChatCommand(deps: AppDeps, command: ChatCommand, actor: Actor): Promise<ChatReply> {
  try {
    return await run(deps, command, actor);
  } catch (err) {
    if (!(err instanceof PulumiScaleError) || err.status >= 500) throw err;
    const help = err.code === 'PS_TARGET_UNKNOWN' ? `\n\nTargets: ${Object.keys(deps.config.targets).join(', ')}` : '';
    return { text: `${err.message}${help}`, public: false };
  }
}

async function run(deps: AppDeps, command: ChatCommand, actor: Actor): Promise<ChatReply> {
  switch (command.kind) {
    case 'help':
      return { text: helpReply(command.problem), public: false };
    case 'status': {
      const states = command.target === null ? await deps.engine.states() : [await stateOf(deps, command.target)];
      return { text: states.map((s) => statusLine(s, (deps.now ?? Date.now)())).join('\n') || 'no targets are configured', public: false };
    }
    case 'history': {
      await stateOf(deps, command.target);
      const events = await deps.store.listEvents({ target: command.target, limit: 10 });
      return { text: events.length === 0 ? `${command.target}: no history yet` : events.map(historyLine).join('\n'), public: false };
    }
    case 'scale': {
      const body = { ...(command.to === undefined ? { by: command.by ?? 0 } : { to: command.to }), dryRun: command.dryRun };
      const { intent, queued } = await scale(deps, command.target, body, { source: 'chat', actor });
      const what = command.to === undefined ? `by ${signed(command.by ?? 0)}` : `to ${command.to}`;
      const where = queued > 1 ? ` (${queued - 1} command(s) ahead of it)` : '';
      return { text: `${actor.name} asked to ${command.dryRun ? 'preview scaling' : 'scale'} ${command.target} ${what}: queued${where}.`, public: true, commandId: intent.id };
    }
    case 'pause': {
      const forText = command.forText ?? DEFAULT_CHAT_PAUSE;
      const state = await pause(deps, command.target, { for: forText, direction: command.direction, reason: `paused by ${actor.name} (${actor.via})` });
      const which = command.direction === 'both' ? '' : ` (${command.direction} only)`;
      return { text: `${actor.name} paused ${command.target}${which} until ${state.pause?.until ?? 'later'}.`, public: true };
    }
    case 'resume':
      await resume(deps, command.target);
      return { text: `${actor.name} resumed ${command.target}.`, public: true };
    case 'approve':
    case 'reject': {
      const decided = await deps.engine.decideApproval(command.id, command.kind, actor);
      const verb = command.kind === 'approve' ? 'approved' : 'rejected';
      return { text: `${actor.name} ${verb} ${decided.target}: ${decided.from ?? 'unset'} → ${decided.to}.`, public: true };
    }
  }
}

async function stateOf(deps: AppDeps, name: string): Promise<TargetState> {
  const state = await deps.engine.state(name);
  if (state === null) throw new PulumiScaleError('PS_TARGET_UNKNOWN', `no target named "${name}"`);
  return state;
}

/** One target in a line: value, bounds, and what holds or moves it (the terminal view's words). */
export function statusLine(s: TargetState, now = Date.now()): string {
  const notes = [
    ...whatHolds(s, now),
    s.running ? 'operation running' : null,
    s.pendingCount > 0 ? `${s.pendingCount} command(s) queued` : null,
    s.signals.length > 0 ? `${s.signals.length} alert(s) firing` : null,
  ].filter((n) => n !== null);
  const bounds = `[${s.bounds.min}, ${s.bounds.max}]${s.bounds.source === 'config' ? '' : ` by ${s.bounds.source}`}`;
  return `${s.name}: ${s.current ?? 'unknown'} in ${bounds}${notes.length > 0 ? `; ${notes.join('; ')}` : ''}`;
}

/** One event in a line. */
export function historyLine(e: ScalingEvent): string {
  const change = e.to === null ? `${e.from ?? '?'}` : `${e.from ?? '?'} → ${e.to}`;
  const reason = cut(e.reason, 120);
  return `${e.at} ${e.kind} ${change}: ${reason}`;
}

function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n);
}

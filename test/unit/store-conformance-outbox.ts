/**
 * The conformance suite's outbox and approvals half (registered from store-conformance.ts): an
 * event and its messages are written together by every method that appends events, a
 * destination's messages come back in order, and approvals round-trip and decide atomically.
 */
import { describe, expect, it } from 'vitest';
import type { OutboxRouter } from '../../src/store/store.js';
import type { ScalingEvent } from '../../src/types.js';
import type { SuiteContext } from './store-conformance-history.js';
import { at, makeApproval, makeCommand, makeEvent, makeRecord, makeRunning, makeSignal } from './store-fixtures.js';

/** Changed and failed events go to `chat`; everything goes to `audit`; target `db` to none. */
const route: OutboxRouter = (event) =>
  event.target === 'db' ? [] : event.kind === 'changed' || event.kind === 'failed' ? ['chat', 'audit'] : ['audit'];

/** Registers the outbox and approval tests on `ctx`. */
export function describeOutboxConformance(ctx: SuiteContext): void {
  describe('outbox', () => {
    /** Every message waiting for `destination`, oldest first, removing each as it is read. */
    async function drain(destination: string): Promise<ScalingEvent[]> {
      const seen: ScalingEvent[] = [];
      for (let m = await ctx.store.nextMessage(destination); m !== null; m = await ctx.store.nextMessage(destination)) {
        seen.push(m.event);
        await ctx.store.removeMessage(m.seq);
      }
      return seen;
    }

    it('an event appended by any method gets one message per destination its router names, in order', async () => {
      await ctx.remake({ route });
      const e1 = makeEvent({ kind: 'changed', at: at(1) });
      const e2 = makeEvent({ kind: 'skipped', at: at(2) });
      const e3 = makeEvent({ kind: 'failed', at: at(3) });
      const e4 = makeEvent({ kind: 'missed', at: at(4) });
      const e5 = makeEvent({ kind: 'changed', target: 'db', at: at(5) });
      await ctx.store.appendEvent(e1);
      await ctx.store.applySignals({ upsert: [makeSignal()], end: [], events: [e2] });
      await ctx.store.finishOperation('web', { events: [e3], record: makeRecord(), consumed: [] });
      await ctx.store.claimFire({ target: 'web', schedule: 'night', at: at(4), outcome: 'missed' }, { command: null, event: e4 });
      await ctx.store.appendEvent(e5);
      expect(await ctx.store.countMessages()).toStrictEqual(new Map([['audit', 4], ['chat', 2]]));
      expect(await drain('chat')).toStrictEqual([e1, e3]);
      expect(await drain('audit')).toStrictEqual([e1, e2, e3, e4]);
      expect(await ctx.store.countMessages()).toStrictEqual(new Map());
    });

    it('without a router no message is written', async () => {
      await ctx.store.appendEvent(makeEvent());
      expect(await ctx.store.countMessages()).toStrictEqual(new Map());
      expect(await ctx.store.nextMessage('audit')).toBeNull();
    });

    it('a refused write adds no message: the event and its messages go together', async () => {
      await ctx.remake({ route });
      const event = makeEvent();
      await ctx.store.appendEvent(event);
      await expect(ctx.store.appendEvent(event)).rejects.toThrow();
      expect(await ctx.store.countMessages()).toStrictEqual(new Map([['audit', 1], ['chat', 1]]));
    });

    it('a deferred message keeps its place and says when to try again and how often it failed', async () => {
      await ctx.remake({ route });
      const first = makeEvent({ kind: 'changed' });
      await ctx.store.appendEvent(first);
      await ctx.store.appendEvent(makeEvent({ kind: 'changed' }));
      const head = await ctx.store.nextMessage('chat');
      expect(head).toMatchObject({ destination: 'chat', event: first, attempts: 0, notBefore: null });
      await ctx.store.deferMessage(head?.seq ?? -1, 2, at(30));
      expect(await ctx.store.nextMessage('chat')).toMatchObject({ seq: head?.seq, attempts: 2, notBefore: at(30), event: first });
    });

    it("a destination no longer configured loses its messages; the others keep theirs", async () => {
      await ctx.remake({ route });
      await ctx.store.appendEvent(makeEvent({ kind: 'changed' }));
      await ctx.store.appendEvent(makeEvent({ kind: 'skipped' }));
      expect(await ctx.store.dropMessagesExcept(['audit'])).toStrictEqual(new Map([['chat', 1]]));
      expect(await ctx.store.countMessages()).toStrictEqual(new Map([['audit', 2]]));
      expect(await ctx.store.dropMessagesExcept(['audit'])).toStrictEqual(new Map());
      expect(await ctx.store.dropMessagesExcept([])).toStrictEqual(new Map([['audit', 2]]));
    });

    it('removing an absent message is no error', async () => {
      await expect(ctx.store.removeMessage(123_456)).resolves.toBeUndefined();
    });
  });

  describe('approvals', () => {
    it('an approval comes back as it went in, and an update replaces it in place', async () => {
      const a = makeApproval();
      const b = makeApproval({ target: 'db', from: null });
      await ctx.store.saveApproval(a);
      await ctx.store.saveApproval(b);
      expect(await ctx.store.getApproval(a.id)).toStrictEqual(a);
      const decided = { ...a, status: 'approved' as const, decidedBy: { via: 'slack' as const, id: 'U1', name: 'alice ✓' }, decidedAt: at(60) };
      await ctx.store.saveApproval(decided);
      expect(await ctx.store.listApprovals({ limit: 10 })).toStrictEqual([b, decided]);
      expect(await ctx.store.listApprovals({ status: 'approved', limit: 10 })).toStrictEqual([decided]);
      expect(await ctx.store.listApprovals({ status: 'pending', limit: 1 })).toStrictEqual([b]);
      expect(await ctx.store.getApproval('nope')).toBeNull();
    });

    it('a decision is saved with its event, the target record and the commands it consumed, atomically', async () => {
      await ctx.remake({ route });
      const fire = makeCommand({ source: 'schedule' });
      const later = makeCommand();
      await ctx.store.addCommand(fire);
      await ctx.store.addCommand(later);
      const a = makeApproval({ commands: [fire.id] });
      await ctx.store.saveApproval(a);
      const event = makeEvent({ kind: 'skipped', skipReason: 'rejected' });
      const record = makeRecord({ cooldownUntil: { up: at(600), down: null } });
      await ctx.store.saveApproval({ ...a, status: 'rejected' }, { event, record, consumed: [fire.id] });
      expect((await ctx.store.loadCommands()).get('web')?.map((c) => c.id)).toStrictEqual([later.id]);
      expect((await ctx.store.getApproval(a.id))?.status).toBe('rejected');
      expect(await ctx.store.listEvents({ limit: 5 })).toStrictEqual([event]);
      expect(await ctx.store.loadTargets()).toStrictEqual(new Map([['web', record]]));
      expect(await ctx.store.countMessages()).toStrictEqual(new Map([['audit', 1]]));
      // A repeated event id refuses the whole write: the approval stays as it was.
      await expect(ctx.store.saveApproval({ ...a, status: 'expired' }, { event })).rejects.toThrow();
      expect((await ctx.store.getApproval(a.id))?.status).toBe('rejected');
    });

    it('an operation end saves the approval it requested with its event', async () => {
      const a = makeApproval();
      const command = makeCommand();
      await ctx.store.addCommand(command);
      await ctx.store.startOperation('web', makeRunning({ commandIds: [command.id] }));
      const event = makeEvent({ kind: 'awaiting-approval', approval: { id: a.id, status: 'pending', expiresAt: a.expiresAt, changes: a.changes, via: a.via, decidedBy: null } });
      await ctx.store.finishOperation('web', { events: [event], record: makeRecord(), consumed: [], approvals: [a] });
      expect(await ctx.store.getApproval(a.id)).toStrictEqual(a);
      expect(await ctx.store.listEvents({ limit: 1 })).toStrictEqual([event]);
      // Nothing consumed: the command waits with the approval.
      expect((await ctx.store.loadCommands()).get('web')?.map((c) => c.id)).toStrictEqual([command.id]);
    });
  });
}

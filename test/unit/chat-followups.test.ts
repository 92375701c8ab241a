import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Followups, RESPONSE_URL_TTL_MS } from '../../src/notify/chat/followups.js';
import { makeEvent } from './store-fixtures.js';

/** Followups with a recording poster and a settable clock. */
function followups(fail = false) {
  const posts: { url: string; body: { text: string; response_type: string } }[] = [];
  let now = 0;
  const f = new Followups(
    async (url, body) => {
      posts.push({ url, body: body as { text: string; response_type: string } });
      if (fail) throw new Error('connection refused');
    },
    pino({ level: 'silent' }),
    () => now,
  );
  return { f, posts, advance: (ms: number) => (now += ms) };
}

describe('chat follow-ups: a command reports its outcome to where it was typed', () => {
  it("posts once, to the command's response URL, when the event that covers it arrives", () => {
    const { f, posts } = followups();
    f.watch('c1', 'https://hooks.slack.com/commands/1');
    f.onEvent(makeEvent({ commands: ['c0'] }));
    expect(posts).toEqual([]);
    f.onEvent(makeEvent({ commands: ['c1'], from: 2, to: 5, kind: 'changed' }));
    f.onEvent(makeEvent({ commands: ['c1'] }));
    expect(posts).toHaveLength(1);
    expect(posts[0]?.url).toBe('https://hooks.slack.com/commands/1');
    expect(posts[0]?.body.response_type).toBe('in_channel');
    expect(posts[0]?.body.text).toContain('5');
  });

  it('a cleared stale lock is not the end of the command: the next event is', () => {
    const { f, posts } = followups();
    f.watch('c1', 'https://hooks.slack.com/commands/1');
    f.onEvent(makeEvent({ kind: 'unlocked', commands: ['c1'] }));
    expect(posts).toHaveLength(0);
    f.onEvent(makeEvent({ kind: 'failed', commands: ['c1'], errorCode: 'PS_PULUMI_PROGRAM' }));
    expect(posts).toHaveLength(1);
  });

  it('a response URL past its 30 minutes is not posted to', () => {
    const { f, posts, advance } = followups();
    f.watch('c1', 'https://hooks.slack.com/commands/1');
    advance(RESPONSE_URL_TTL_MS + 1);
    f.onEvent(makeEvent({ commands: ['c1'] }));
    expect(posts).toEqual([]);
  });

  it('a failing post never throws into the event bus', async () => {
    const { f, posts } = followups(true);
    f.watch('c1', 'https://hooks.slack.com/commands/1');
    expect(() => f.onEvent(makeEvent({ commands: ['c1'] }))).not.toThrow();
    await new Promise((resolve) => setImmediate(resolve));
    expect(posts).toHaveLength(1);
  });

  it('user text in the reason cannot mention a channel', () => {
    const { f, posts } = followups();
    f.watch('c1', 'https://hooks.slack.com/commands/1');
    f.onEvent(makeEvent({ commands: ['c1'], reason: 'manual <!channel> & co' }));
    expect(posts[0]?.body.text).not.toContain('<!channel>');
    expect(posts[0]?.body.text).toContain('&lt;!channel&gt;');
  });
});

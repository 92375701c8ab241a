import { describe, expect, it } from 'vitest';
import { HELP_TEXT, MAX_COMMAND_TEXT, helpReply, parseChatCommand, type ChatCommand } from '../../src/notify/chat/commands.js';

describe('parseChatCommand: the commands that parse', () => {
  it.each<[string, string, ChatCommand]>([
    ['empty text asks for help', '', { kind: 'help', problem: null }],
    ['blank text asks for help', '   \t ', { kind: 'help', problem: null }],
    ['help asks for help', 'help', { kind: 'help', problem: null }],
    ['help ignores what follows it', 'help scale', { kind: 'help', problem: null }],
    ['status alone covers every target', 'status', { kind: 'status', target: null }],
    ['status may name a target', 'status web', { kind: 'status', target: 'web' }],
    ['approve names an approval id', 'approve 0f3d6f5e-1b2c-4d5e-8f90-123456789abc', { kind: 'approve', id: '0f3d6f5e-1b2c-4d5e-8f90-123456789abc' }],
    ['reject names an approval id, keyword in any case', 'REJECT a1', { kind: 'reject', id: 'a1' }],
    ['scale to sets a value', 'scale web to 3', { kind: 'scale', target: 'web', to: 3, dryRun: false }],
    ['scale to may set 0', 'scale web to 0', { kind: 'scale', target: 'web', to: 0, dryRun: false }],
    ['scale by takes a positive change', 'scale web by 2', { kind: 'scale', target: 'web', by: 2, dryRun: false }],
    ['scale by takes an explicit plus', 'scale web by +2', { kind: 'scale', target: 'web', by: 2, dryRun: false }],
    ['scale by takes a negative change', 'scale web by -1', { kind: 'scale', target: 'web', by: -1, dryRun: false }],
    ['a trailing dry-run previews', 'scale web to 3 dry-run', { kind: 'scale', target: 'web', to: 3, dryRun: true }],
    ['--dry-run is dry-run', 'scale web by -1 --dry-run', { kind: 'scale', target: 'web', by: -1, dryRun: true }],
    ['dryrun is dry-run', 'scale web to 3 dryrun', { kind: 'scale', target: 'web', to: 3, dryRun: true }],
    ['keywords ignore case', 'SCALE web TO 3 DRY-RUN', { kind: 'scale', target: 'web', to: 3, dryRun: true }],
    ['target names keep their case', 'status Web-API', { kind: 'status', target: 'Web-API' }],
    ['extra whitespace is ignored', '  scale   web\tto\n 3  ', { kind: 'scale', target: 'web', to: 3, dryRun: false }],
    ['a target may be named like a keyword', 'scale to to 3', { kind: 'scale', target: 'to', to: 3, dryRun: false }],
    ['a target may use _ . and -', 'history api_v2.prod-eu', { kind: 'history', target: 'api_v2.prod-eu' }],
    ['a 63-character target is allowed', `status ${'a'.repeat(63)}`, { kind: 'status', target: 'a'.repeat(63) }],
    ['the largest safe integer is allowed', `scale web to ${Number.MAX_SAFE_INTEGER}`, { kind: 'scale', target: 'web', to: Number.MAX_SAFE_INTEGER, dryRun: false }],
    ['pause alone pauses both ways with no end', 'pause web', { kind: 'pause', target: 'web', forMs: null, forText: null, direction: 'both' }],
    ['pause for takes a duration', 'pause web for 30m', { kind: 'pause', target: 'web', forMs: 1_800_000, forText: '30m', direction: 'both' }],
    ['pause takes a compound duration', 'pause web for 1h30m', { kind: 'pause', target: 'web', forMs: 5_400_000, forText: '1h30m', direction: 'both' }],
    ['pause may hold one direction', 'pause web up', { kind: 'pause', target: 'web', forMs: null, forText: null, direction: 'up' }],
    ['pause takes duration then direction', 'pause web for 2h down', { kind: 'pause', target: 'web', forMs: 7_200_000, forText: '2h', direction: 'down' }],
    ['pause takes direction then duration', 'pause web DOWN FOR 2h', { kind: 'pause', target: 'web', forMs: 7_200_000, forText: '2h', direction: 'down' }],
    ['resume names a target', 'Resume web', { kind: 'resume', target: 'web' }],
    ['history names a target', 'history web', { kind: 'history', target: 'web' }],
  ])('%s', (_rule, text, expected) => {
    expect(parseChatCommand(text)).toEqual(expected);
  });

  it('gives scale exactly one of to and by', () => {
    expect(parseChatCommand('scale web to 3')).not.toHaveProperty('by');
    expect(parseChatCommand('scale web by 3')).not.toHaveProperty('to');
  });

  it('reads -0 as 0', () => {
    expect(Object.is((parseChatCommand('scale web to -0') as { to: number }).to, 0)).toBe(true);
  });
});

describe('parseChatCommand: anything else is help with a specific problem', () => {
  it.each<[string, string, RegExp]>([
    ['an unknown command', 'deploy web', /unknown command "deploy"/],
    ['approve without an id', 'approve', /missing approval id/],
    ['approve with a bad id', 'approve <!channel>', /is not an approval id/],
    ['reject with two ids', 'reject a b', /unexpected "b"/],
    ['text over the limit', `status ${'a'.repeat(MAX_COMMAND_TEXT)}`, new RegExp(`longer than ${MAX_COMMAND_TEXT}`)],
    ['status with two targets', 'status web api', /unexpected "api"/],
    ['a target name starting with a dash', 'status -web', /"-web" is not a target name/],
    ['a target name of 64 characters', `status ${'a'.repeat(64)}`, /is not a target name/],
    ['a target name with a slash', 'resume web/api', /is not a target name/],
    ['scale without a target', 'scale', /missing target/],
    ['scale without to or by', 'scale web', /missing "to <n>" or "by <n>"/],
    ['scale with another verb', 'scale web up 3', /expected "to" or "by", not "up"/],
    ['scale to without a number', 'scale web to', /missing number after "to"/],
    ['scale by without a number', 'scale web by dry-run', /missing number after "by"/],
    ['a fraction', 'scale web to 2.5', /"2.5" after "to" is not a whole number/],
    ['an exponent', 'scale web to 1e3', /not a whole number/],
    ['a hex number', 'scale web to 0x10', /not a whole number/],
    ['a word for a number', 'scale web to three', /not a whole number/],
    ['a number past the safe integers', 'scale web to 9007199254740992', /too large/],
    ['a negative to', 'scale web to -1', /must be 0 or more/],
    ['by 0', 'scale web by 0', /changes nothing/],
    ['by +0', 'scale web by +0', /changes nothing/],
    ['dry-run anywhere but last', 'scale web dry-run to 3', /expected "to" or "by", not "dry-run"/],
    ['words after the number', 'scale web to 3 please', /unexpected "please"/],
    ['dry-run given twice', 'scale web to 3 dry-run dry-run', /unexpected "dry-run"/],
    ['pause without a target', 'pause', /missing target/],
    ['pause for without a duration', 'pause web for', /missing duration after "for"/],
    ['a duration without a unit', 'pause web for 30', /"30" is not a duration/],
    ['a duration in words', 'pause web for ever', /"ever" is not a duration/],
    ['a zero duration', 'pause web for 0s', /ends at once/],
    ['a duration over 100 years', 'pause web for 40000d', /longer than 36500d/],
    ['pause for given twice', 'pause web for 1h for 2h', /"for" given twice/],
    ['pause direction given twice', 'pause web up down', /direction given twice/],
    ['pause with an unknown word', 'pause web sideways', /unexpected "sideways"/],
    ['resume without a target', 'resume', /missing target/],
    ['resume with two targets', 'resume web api', /unexpected "api"/],
    ['history without a target', 'history', /missing target/],
  ])('%s', (_rule, text, problem) => {
    const cmd = parseChatCommand(text);
    expect(cmd.kind).toBe('help');
    expect(cmd.kind === 'help' ? cmd.problem : null).toMatch(problem);
  });

  it.each([
    ['a channel mention', 'status <!channel>'],
    ['an @everyone', 'deploy @everyone'],
    ['a code span', 'resume `web`'],
    ['a user mention', 'pause web for <@U0123>'],
  ])('never echoes markup back: %s', (_rule, text) => {
    const cmd = parseChatCommand(text);
    expect(cmd.kind === 'help' ? cmd.problem : null).toMatch(/^[^<>@`]+$/);
  });

  it('clips a long word in the problem', () => {
    const cmd = parseChatCommand(`deploy${'x'.repeat(300)}`);
    expect(cmd.kind === 'help' ? cmd.problem?.length : 0).toBeLessThan(80);
  });
});

describe('HELP_TEXT and helpReply', () => {
  it.each(['status', 'scale <target> to', 'scale <target> by', 'dry-run', 'pause <target>', 'for <duration>', 'resume <target>', 'history <target>', 'help'])(
    'HELP_TEXT shows %s',
    (usage) => {
      expect(HELP_TEXT).toContain(usage);
    },
  );

  it('helpReply without a problem is the usage alone', () => {
    expect(helpReply(null)).toBe(HELP_TEXT);
  });

  it('helpReply puts the problem before the usage', () => {
    expect(helpReply('unknown command "deploy"')).toBe(`unknown command "deploy"\n\n${HELP_TEXT}`);
  });
});

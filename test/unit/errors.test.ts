import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, PulumiScaleError, StackConflictError, isRetryable, type ErrorCode } from '../../src/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const codes = Object.keys(ERROR_CODES) as ErrorCode[];

describe('error registry', () => {
  it.each(codes)('%s is documented in the README with its status', (code) => {
    const row = readme.split("\n").find((line) => line.startsWith(`| \`${code}\` |`));
    expect(row, `README has no row for ${code}`).toBeDefined();
    expect(row).toContain(String(ERROR_CODES[code].status));
  });

  it('every error carries its registered status and keeps its cause', () => {
    const cause = new Error('lock held');
    const err = new StackConflictError('stack locked', { cause });
    expect(err).toBeInstanceOf(PulumiScaleError);
    expect(err.status).toBe(409);
    expect(err.cause).toBe(cause);
    expect(isRetryable(err)).toBe(true);
    expect(isRetryable(new PulumiScaleError('PS_PULUMI_PROGRAM', 'boom'))).toBe(false);
  });
});

/** Test helpers for the error registry. */
import { PulumiScaleError, type ErrorCode } from '../../src/errors.js';

/** The registry code `fn` throws, or 'none' when it returns; any other error is rethrown. */
export function codeOf(fn: () => unknown): ErrorCode | 'none' {
  try {
    fn();
    return 'none';
  } catch (err) {
    if (err instanceof PulumiScaleError) return err.code;
    throw err;
  }
}

/** The registry code a promise rejects with, or 'none' when it resolves; any other error is rethrown. */
export async function codeOfAsync(p: Promise<unknown>): Promise<ErrorCode | 'none'> {
  try {
    await p;
    return 'none';
  } catch (err) {
    if (err instanceof PulumiScaleError) return err.code;
    throw err;
  }
}

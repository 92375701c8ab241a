/**
 * The one place where Pulumi's failures become PulumiScale's typed errors (errors.ts), so the
 * engine can steer on `instanceof` (retry a conflict, give up on a program error) and never
 * reads a CLI message itself.
 *
 * The Automation API already classifies a few failures into error classes
 * (`ConcurrentUpdateError`, `StackNotFoundError`…) from the CLI's stderr; those are matched by
 * class. Message patterns are used only here, and only for what the API leaves as a plain
 * `CommandError`: a lock reported by a command the API does not classify, a missing binary or
 * language host.
 */
import { CommandError, ConcurrentUpdateError } from '@pulumi/pulumi/automation/index.js';
import {
  PulumiCliMissingError,
  PulumiProgramError,
  PulumiScaleError,
  StackConflictError,
} from '../errors.js';

/** What a `CommandError` carries at runtime (the Automation API keeps it private in its types). */
interface CommandResultShape {
  stdout?: string;
  stderr?: string;
  code?: number;
  err?: { code?: unknown; message?: string };
}

/** The Automation API's exit code for "the process could not be run at all". */
const SPAWN_FAILED = -2;

/** Lock and conflict messages of the file/S3 backends and of Pulumi Cloud. */
const CONFLICT = [/another update is currently in progress/i, /the stack is currently locked by/i];

/** The CLI found no language host for the project's runtime: an installation problem. */
const NO_LANGUAGE_HOST = /no language plugin '[^']+' found|could not find .*language plugin/i;

/** How much of the CLI's output an error message keeps; the full text stays in `cause`. */
const MAX_MESSAGE = 600;

/**
 * Maps any failure of a Pulumi operation to a {@link PulumiScaleError}, keeping the original
 * as `cause`. `what` names the operation for the message, e.g. `up of web (prod)`.
 * Errors that are already PulumiScale errors pass through unchanged.
 */
export function toPulumiScaleError(err: unknown, what: string): PulumiScaleError {
  if (err instanceof PulumiScaleError) return err;
  if (err instanceof ConcurrentUpdateError) {
    return new StackConflictError(`${what}: the stack is locked by another update (${summarize(err)})`, { cause: err });
  }
  if (err instanceof CommandError) {
    const result = commandResultOf(err);
    const text = `${result.stderr ?? ''}\n${result.stdout ?? ''}`;
    if (CONFLICT.some((re) => re.test(text))) {
      return new StackConflictError(`${what}: the stack is locked by another update (${summarize(err)})`, { cause: err });
    }
    if (result.code === SPAWN_FAILED && result.err?.code === 'ENOENT') {
      return new PulumiCliMissingError(`${what}: the pulumi binary could not be run (${result.err.message ?? 'ENOENT'})`, {
        cause: err,
      });
    }
    if (NO_LANGUAGE_HOST.test(text)) {
      return new PulumiCliMissingError(`${what}: the project's language host is not installed (${summarize(err)})`, {
        cause: err,
      });
    }
    return new PulumiProgramError(`${what} failed: ${summarize(err)}`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new PulumiProgramError(`${what} failed: ${message}`, { cause: err });
}

/**
 * Maps a failure to obtain the CLI (`PulumiCommand.get`: binary missing, not executable, or a
 * version the SDK refuses) to {@link PulumiCliMissingError}.
 */
export function cliMissing(err: unknown, where: string): PulumiCliMissingError {
  const detail = err instanceof CommandError ? summarize(err) : err instanceof Error ? err.message : String(err);
  return new PulumiCliMissingError(
    `no usable Pulumi CLI ${where}: ${detail}. Install the Pulumi CLI or run scripts/setup-pulumi.sh, ` +
      'and point pulumi.cliDir at the folder that holds the binary',
    { cause: err },
  );
}

/**
 * The useful part of a CLI failure: its `error:` lines (diagnostics go to stdout during an
 * update, the final verdict to stderr), else the first line of stderr.
 */
export function summarize(err: CommandError): string {
  const result = commandResultOf(err);
  const lines = `${result.stdout ?? ''}\n${result.stderr ?? ''}`
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /^error:/i.test(line));
  const unique = [...new Set(lines)];
  const text =
    unique.length > 0
      ? unique.join('; ')
      : (result.stderr ?? '').trim().split('\n')[0] || result.err?.message || `exit code ${String(result.code)}`;
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}

function commandResultOf(err: CommandError): CommandResultShape {
  const result = (err as unknown as { commandResult?: CommandResultShape }).commandResult;
  return result ?? { stderr: err.message };
}

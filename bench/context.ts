/**
 * What every figure gets from bench/run.ts: the shared Pulumi sandbox, the running bare Fastify
 * baseline, a temp folder, and a progress log (stderr, so stdout is the report alone).
 */
import type { PulumiSandbox } from '../test/support/pulumi.js';
import type { ServerProcess } from './processes.js';
import type { Row } from './report.js';

/** The body limit of every bench daemon and of the baseline: the big notification needs it. */
export const BODY_LIMIT = '2mb';
/** The same, in bytes. */
export const BODY_LIMIT_BYTES = 2 * 1024 * 1024;

/** Shared by the figures of one run. */
export interface BenchContext {
  sandbox: PulumiSandbox;
  /** The `pulumi:` section of every bench daemon's config: the sandbox's backend, and its CLI or BENCH_CLI_DIR's. */
  pulumi: string;
  /** The bare Fastify route (bench/baseline-server.ts). */
  baseline: ServerProcess;
  /** A fresh folder for a daemon's config and store. */
  tempDir(name: string): string;
  /** Progress, on stderr. */
  log(message: string): void;
  /** A line for the report, printed above the table (what was sent, counts, caveats). */
  note(message: string): void;
}

/** A figure: measures, and returns its rows. */
export type Figure = (ctx: BenchContext) => Promise<Row[]>;

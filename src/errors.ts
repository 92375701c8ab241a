/**
 * Every error code PulumiScale can answer or record, in one registry: code, HTTP status and a
 * one-line description. The HTTP error handler maps any {@link PulumiScaleError} to
 * `{ error: { code, message, details? } }` with the registered status, and a test fails when a
 * code is used without being documented in the README.
 *
 * The engine steers on error classes (retry, give up), matched with `instanceof`, never on
 * message text; `pulumi/` maps the CLI's failures to these classes once, at the edge.
 */

/** The registry: code -> HTTP status and what it means. */
export const ERROR_CODES = {
  PS_UNAUTHORIZED: { status: 401, description: 'missing or wrong bearer token or basic credentials' },
  PS_WEBHOOK_SIGNATURE: { status: 401, description: 'an SNS message whose signature does not verify' },
  PS_CERT_URL_REJECTED: { status: 400, description: 'an SNS SigningCertURL or SubscribeURL off the SNS hosts; nothing was fetched' },
  PS_TOPIC_UNKNOWN: { status: 403, description: 'an SNS TopicArn not listed in webhooks.cloudwatch.topicArns' },
  PS_REPLAYED: { status: 409, description: 'an SNS MessageId that was already accepted' },
  PS_PAYLOAD_INVALID: { status: 400, description: 'a body that is not valid JSON or not of the expected shape (zod issues attached)' },
  PS_PAYLOAD_TOO_LARGE: { status: 413, description: 'a body over the configured size limit' },
  PS_TARGET_UNKNOWN: { status: 404, description: 'a target name that is not configured' },
  PS_TARGET_MISSING: { status: 422, description: 'a webhook alert that names no target (query, label or description)' },
  PS_ACTION_INVALID: { status: 400, description: 'an action other than up or down' },
  PS_OUT_OF_BOUNDS: { status: 422, description: 'a manual "to" outside the bounds in effect (the target\'s [min, max], or an active schedule window\'s)' },
  PS_NOT_FOUND: { status: 404, description: 'no such route' },
  PS_URL_INVALID: { status: 400, description: 'a URL the router cannot read: a malformed %-escape, or a route parameter over 100 characters' },
  PS_APPROVAL_UNKNOWN: { status: 404, description: 'no approval with that id' },
  PS_APPROVAL_CLOSED: { status: 409, description: 'an approval already approved, rejected or expired: nothing left to decide' },
  PS_SIMULATION_TOO_LARGE: { status: 422, description: 'a simulation that would take more work than one request may (a shorter span, a longer evaluationInterval)' },
  PS_CHAT_SIGNATURE: { status: 401, description: 'a chat request (Slack, Discord) whose signature or timestamp does not verify' },
  PS_DRAINING: { status: 503, description: 'the daemon is shutting down and takes no new work' },
  PS_STORE_UNAVAILABLE: { status: 503, description: 'the store could not record the request; retry' },
  PS_CERT_FETCH_FAILED: { status: 502, description: 'the SNS signing certificate could not be fetched; SNS will retry' },
  PS_SNS_CONFIRM_FAILED: { status: 502, description: 'confirming an SNS subscription (GET SubscribeURL) failed; SNS will retry' },
  PS_CONFIG_INVALID: { status: 500, description: 'a config file that does not validate' },
  PS_PULUMI_CONFLICT: { status: 409, description: 'the stack is locked by another update (retried with backoff)' },
  PS_PULUMI_PROGRAM: { status: 500, description: 'the Pulumi program or operation failed; previous config restored' },
  PS_PULUMI_CLI_MISSING: { status: 500, description: 'no usable Pulumi CLI was found' },
  PS_PULUMI_CONFIG: { status: 500, description: 'the stack\'s config value is missing or not a number' },
  PS_PULUMI_TIMEOUT: { status: 504, description: 'the operation ran past engine.operationTimeout: it was cancelled and the previous config restored' },
  PS_STACK_NOT_FOUND: { status: 404, description: 'the target\'s stack does not exist; PulumiScale never creates one unless the target says createStack: true' },
  PS_INTERNAL: { status: 500, description: 'an unexpected error' },
} as const satisfies Record<string, { status: number; description: string }>;

/** A registered error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class of every error PulumiScale raises on purpose. */
export class PulumiScaleError extends Error {
  /** The registry code. */
  readonly code: ErrorCode;
  /** Structured details served with the error (zod issues, the allowed values…). */
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options?.details;
  }

  /** The HTTP status registered for the code. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

/** The stack is locked or another update is in progress: retry later. */
export class StackConflictError extends PulumiScaleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PS_PULUMI_CONFLICT', message, options);
  }
}

/** The program or the operation failed; retrying will not help without a change. */
export class PulumiProgramError extends PulumiScaleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PS_PULUMI_PROGRAM', message, options);
  }
}

/** No usable Pulumi CLI. */
export class PulumiCliMissingError extends PulumiScaleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PS_PULUMI_CLI_MISSING', message, options);
  }
}

/** The stack's config value is missing or not a number. */
export class StackConfigError extends PulumiScaleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PS_PULUMI_CONFIG', message, options);
  }
}

/** The target's stack does not exist (and the target does not allow creating it). */
export class StackNotFoundError extends PulumiScaleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PS_STACK_NOT_FOUND', message, options);
  }
}

/**
 * The reasons an operation's AbortSignal carries. The engine aborts with one of them; the
 * executor cancels the Pulumi CLI and rejects with that same reason, so the engine learns from
 * the type alone whether to record a failure (timeout) or keep the intent for the next start
 * (a drain cut off by its timeout).
 */
export class OperationTimeoutError extends PulumiScaleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PS_PULUMI_TIMEOUT', message, options);
  }
}

/** The operation was stopped because the daemon is shutting down; its intent stays stored. */
export class OperationInterruptedError extends PulumiScaleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PS_DRAINING', message, options);
  }
}

/** The store failed to read or write; callers answer 503 so senders retry. */
export class StoreUnavailableError extends PulumiScaleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PS_STORE_UNAVAILABLE', message, options);
  }
}

/**
 * A write of a replica that no longer holds the stack it is about (several replicas on
 * PostgreSQL): its lease expired or another replica took it, so the write was refused whole.
 * A kind of store refusal, so every caller that gives way to one gives way to this too; the
 * engine also steps down from the stack.
 */
export class LeaseLostError extends StoreUnavailableError {
  /** The key of the stack whose lease was lost (`stack` is the trace's, as on any Error). */
  readonly stackKey: string;

  constructor(stackKey: string, message: string) {
    super(message);
    this.stackKey = stackKey;
  }
}

/** Whether an error is worth retrying with backoff. */
export function isRetryable(err: unknown): boolean {
  return err instanceof StackConflictError;
}

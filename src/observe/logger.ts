/**
 * Structured logs (pino, JSON lines on stdout). Every history event is logged once, here, as a
 * subscriber of the bus, so the engine's decisions and the webhooks' refusals read the same.
 */
import { pino, type Logger } from 'pino';
import type { EventBus } from './bus.js';

/** Creates the daemon's logger. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'pulumiscale' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** Logs every history event at a level that matches its kind. */
export function logEvents(bus: EventBus, logger: Logger): () => void {
  return bus.subscribe((msg) => {
    if (msg.type !== 'event') return;
    const e = msg.event;
    const fields = {
      event: e.id,
      target: e.target,
      kind: e.kind,
      from: e.from,
      to: e.to,
      source: e.source,
      intents: e.intents,
      durationMs: e.durationMs,
      dryRun: e.dryRun,
      ...(e.skipReason ? { skipReason: e.skipReason } : {}),
      ...(e.errorCode ? { errorCode: e.errorCode } : {}),
    };
    if (e.kind === 'failed') logger.error(fields, e.reason);
    else logger.info(fields, e.reason);
  });
}

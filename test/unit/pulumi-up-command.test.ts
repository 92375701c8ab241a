/**
 * The one-process `up` reads its change counts from the update's engine event log. The log's
 * lines here are in the CLI's format (pulumi 3.276.0 writes one JSON event per line, the
 * summary last but for a cancel event).
 */
import { describe, expect, it } from 'vitest';
import { summaryOf } from '../../src/pulumi/up-command.js';

const line = (event: object): string => JSON.stringify({ sequence: 1, timestamp: 1795950175, ...event });

describe('summaryOf: the change counts of an engine event log', () => {
  it('takes the summary event among the others', () => {
    const log = [
      line({ preludeEvent: { config: { 'web:replicas': '3' } } }),
      line({ resourcePreEvent: { metadata: { op: 'same', urn: 'urn:pulumi:s1::web::pulumi:pulumi:Stack::web-s1' } } }),
      line({ summaryEvent: { maybeCorrupt: false, durationSeconds: 1, resourceChanges: { same: 1, update: 2 }, isPreview: false, result: 'succeeded' } }),
      line({ cancelEvent: {} }),
      '',
    ].join('\n');
    expect(summaryOf(log)).toEqual({ same: 1, update: 2 });
  });

  it('is empty without a summary: an empty log, or one cut short mid-line', () => {
    expect(summaryOf('')).toEqual({});
    expect(summaryOf(`${line({ preludeEvent: {} })}\n{"sequence":5,"summaryEvent":{"resourceCh`)).toEqual({});
  });
});

/**
 * Alertmanager webhook notifications (payload version 4) as the benchmarks send them: every
 * field Alertmanager sends, each firing alert with its own fingerprint so that it is a new
 * signal (README, "The model"), never a refresh of one already stored.
 */

/** autocannon's placeholder, replaced by a fresh id in every request (`idReplacement`). */
export const ID_PLACEHOLDER = '[<id>]';

/** One firing alert with Alertmanager's usual fields; short values keep 5,000 near 1 MB. */
export function firingAlert(target: string, fingerprint: string, instance: string): Record<string, unknown> {
  return {
    status: 'firing',
    labels: { alertname: 'HighCPU', instance, pulumiscale_target: target },
    annotations: {},
    startsAt: '2026-11-27T09:55:12.384Z',
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: 'http://prom:9090/g',
    fingerprint,
  };
}

/** A notification carrying `alerts`, with the group fields Alertmanager fills in. */
export function notification(target: string, alerts: Record<string, unknown>[]): string {
  return JSON.stringify({
    version: '4',
    groupKey: `{}:{pulumiscale_target="${target}"}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'pulumiscale',
    groupLabels: { pulumiscale_target: target },
    commonLabels: { alertname: 'HighCPU', pulumiscale_target: target },
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts,
  });
}

/**
 * One notification with one firing alert whose fingerprint is autocannon's placeholder: with
 * `idReplacement` every request carries a new fingerprint, so each is a new signal.
 */
export function oneAlertTemplate(target: string): string {
  return notification(target, [firingAlert(target, ID_PLACEHOLDER, 'web-1:9100')]);
}

/** One notification with `count` firing alerts for `target`, fingerprints unique per `run`. */
export function bigNotification(target: string, count: number, run: number): string {
  const alerts = Array.from({ length: count }, (_, i) => {
    const fingerprint = ((BigInt(run) << 32n) | BigInt(i)).toString(16).padStart(16, '0');
    return firingAlert(target, fingerprint, `w${i}`);
  });
  return notification(target, alerts);
}

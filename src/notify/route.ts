/**
 * Which destinations an event goes to: the `notifications` config read once into a pure
 * function, which the store runs inside the write that appends the event (the outbox).
 */
import type { Config } from '../config/schema.js';
import type { OutboxRouter } from '../store/store.js';

/**
 * The router of a config: a destination takes an event when it lists the event's kind and, if
 * it names targets, the event's target. An approval request, and how it ended (applied,
 * rejected, expired), also go to the target's `approval.via`, whatever that destination's
 * filters say: the request was posted there, and that is where people wait for its outcome.
 */
export function outboxRouter(config: Readonly<Pick<Config, 'notifications' | 'targets'>>): OutboxRouter {
  const destinations = config.notifications.map((d) => ({ name: d.name, kinds: new Set<string>(d.events), targets: d.targets.length === 0 ? null : new Set(d.targets) }));
  const via = new Map(Object.entries(config.targets).flatMap(([name, t]) => (t.approval ? [[name, t.approval.via] as const] : [])));
  return (event) => {
    const names: string[] = [];
    for (const d of destinations) {
      if (d.kinds.has(event.kind) && (d.targets === null || d.targets.has(event.target))) names.push(d.name);
    }
    const approver = event.approval !== undefined ? via.get(event.target) : undefined;
    if (approver !== undefined && !names.includes(approver)) names.push(approver);
    return names;
  };
}

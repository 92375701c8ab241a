/**
 * Bounds on what a sender's text may cost. Evidence is stored with every intent and event and
 * served back by the API, and the sender decides its size: an alert may carry any number of
 * labels of any length, an alarm any name. Without bounds one hostile or broken notification
 * makes rows of megabytes. Sources build evidence through these helpers, so every stored event
 * has a known worst case, and what was cut is marked rather than silently lost.
 *
 * Pure, like every source: no I/O, nothing but strings in and out (SharedStrings below is the
 * one cache, and changes no output).
 */
import { createHash } from 'node:crypto';

/** The bounds. Characters are UTF-16 code units, as JavaScript counts them. */
export const EVIDENCE_LIMITS = {
  /** Labels kept per alert, the {@link TRUNCATED_LABEL} marker included. */
  labels: 64,
  /** Characters kept of a label name or value, and of a name (alertname, alarm, fingerprint). */
  text: 256,
  /** Characters kept of a URL (`generatorURL`): Prometheus puts the whole expression in it. */
  url: 2048,
  /** Characters of a sender's word (a target or action it names) quoted in a reason or error. */
  quoted: 200,
} as const;

/**
 * The label added to bounded labels when any were dropped or cut, saying how many. It has the
 * `pulumiscale_` prefix of the routing labels, which no exporter uses.
 */
export const TRUNCATED_LABEL = 'pulumiscale_truncated';

/** Ends a cut string, so a reader sees it was cut. */
const ELLIPSIS = '…';

/**
 * One string for equal texts seen recently. Alerts repeat their label values (alertname, job,
 * severity) and generator URLs, and each firing alert's evidence is held for as long as it
 * fires: 20,000 alerts of one rule would otherwise hold 20,000 copies of each. Bounded, so a
 * sender's unique values (an instance, a pod) only ever cost the last `capacity` of them, and
 * texts longer than `maxLength` pass through. What goes in comes out unchanged.
 */
class SharedStrings {
  readonly #seen = new Map<string, string>();
  readonly #capacity: number;
  readonly #maxLength: number;

  constructor(capacity: number, maxLength: number) {
    this.#capacity = capacity;
    this.#maxLength = maxLength;
  }

  of(text: string): string {
    if (text.length > this.#maxLength) return text;
    const known = this.#seen.get(text);
    if (known !== undefined) return known;
    if (this.#seen.size >= this.#capacity) this.#seen.clear();
    this.#seen.set(text, text);
    return text;
  }
}

// The state this file keeps: about 2 MiB at worst for label values, alert names and reasons,
// 1 MiB for URLs (one or a few per alerting rule, but up to EVIDENCE_LIMITS.url characters each).
const sharedTexts = new SharedStrings(4096, EVIDENCE_LIMITS.text);
const sharedUrls = new SharedStrings(256, EVIDENCE_LIMITS.url);

/** `text` (a label value, an alert's name, a reason) as one string shared with its equals; see SharedStrings. */
export function shared(text: string): string {
  return sharedTexts.of(text);
}

/** A URL clipped to EVIDENCE_LIMITS.url, shared with its equals; see SharedStrings. */
export function sharedUrl(url: string): string {
  return sharedUrls.of(clip(url, EVIDENCE_LIMITS.url));
}

/** `text` cut to at most `max` characters, the last of them `…` when anything was cut. */
export function clip(text: string, max: number = EVIDENCE_LIMITS.text): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - ELLIPSIS.length);
  // Never split a surrogate pair: half an emoji is not valid Unicode.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end) + ELLIPSIS;
}

/**
 * An identity (fingerprint, alarm ARN) within the text bound. Unlike {@link clip} it keeps two
 * long ids apart: a long id keeps its start and ends with a hash of the whole, so two alarms
 * whose ARNs differ only past the bound stay two signals instead of refreshing each other.
 */
export function boundedId(id: string, max: number = EVIDENCE_LIMITS.text): string {
  if (id.length <= max) return id;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 16);
  return `${clip(id, max - hash.length - 1)}#${hash}`;
}

/**
 * At most {@link EVIDENCE_LIMITS}.labels labels, names and values clipped. The names in `first`
 * (the ones that name and route an alert) are kept ahead of the others, whatever their place in
 * the map. When anything was dropped or cut, {@link TRUNCATED_LABEL} says so and takes the last
 * slot.
 */
export function boundedLabels(labels: Readonly<Record<string, string>>, first: readonly string[] = []): Record<string, string> {
  const names = Object.keys(labels);
  const max = EVIDENCE_LIMITS.text;
  const needsMarker = names.length > EVIDENCE_LIMITS.labels || names.some((k) => k.length > max || (labels[k] ?? '').length > max);
  const room = needsMarker ? EVIDENCE_LIMITS.labels - 1 : EVIDENCE_LIMITS.labels;
  const leading = first.filter((k) => Object.hasOwn(labels, k));
  const ordered = [...leading, ...names.filter((k) => !leading.includes(k))];

  // A Map, then fromEntries: a label named `__proto__` stays a label instead of a prototype.
  const kept = new Map<string, string>();
  let cut = 0;
  for (const name of ordered) {
    if (kept.size >= room) break;
    const value = labels[name] ?? '';
    const key = clip(name);
    // Two long names alike in their first characters clip to one key: the first one wins.
    if (kept.has(key)) continue;
    if (key !== name || value.length > max) cut += 1;
    // Names need no sharing: V8 keeps one copy of each property name.
    kept.set(key, shared(clip(value)));
  }
  const dropped = names.length - kept.size;
  if (needsMarker) {
    kept.set(TRUNCATED_LABEL, `${dropped} of ${names.length} labels dropped, ${cut} cut to ${max} characters`);
  }
  return Object.fromEntries(kept);
}

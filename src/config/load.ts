/**
 * Loading a config: read the YAML, interpolate `${ENV}`, validate with zod, resolve relative
 * paths against the config file's folder, and freeze. Every problem is collected with its path
 * before failing, so `pulumiscale validate` can print them all at once.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { PulumiScaleError } from '../errors.js';
import { interpolate } from './interpolate.js';
import { configSchema, type Config, type TargetConfig } from './schema.js';
import { stackKeyOf } from './stack-key.js';

/** One config problem: where, and what is wrong. */
export interface ConfigProblem {
  /** Dotted path, e.g. `targets.web.max`; empty for the file itself. */
  path: string;
  message: string;
}

/** A config that does not load; `problems` lists every issue found. */
export class ConfigError extends PulumiScaleError {
  readonly problems: ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    super('PS_CONFIG_INVALID', `${file}: ${problems.length} problem(s)\n${problems.map(formatProblem).join('\n')}`, {
      details: problems,
    });
    this.problems = problems;
  }
}

/** `targets.web.max: must be >= min` */
export function formatProblem(p: ConfigProblem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}

function dotted(p: readonly PropertyKey[]): string {
  return p.map(String).join('.');
}

/** Parses and validates config text; `baseDir` anchors relative paths. Throws ConfigError. */
export function parseConfig(text: string, opts: { file: string; baseDir: string; env?: NodeJS.ProcessEnv }): Readonly<Config> {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      opts.file,
      doc.errors.map((e) => ({ path: '', message: `YAML: ${e.message.split('\n')[0] ?? e.message}` })),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  const { value, issues } = interpolate(raw, opts.env ?? process.env);
  const problems: ConfigProblem[] = issues.map((i) => ({ path: dotted(i.path), message: i.message }));
  const parsed = configSchema.safeParse(value);
  if (!parsed.success) {
    // An unset variable already says why its value is empty; the schema's complaint about that
    // same value would only repeat it.
    const unset = new Set(problems.map((p) => p.path));
    for (const issue of parsed.error.issues) {
      const at = dotted(issue.path);
      if (!unset.has(at)) problems.push({ path: at, message: issue.message });
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(opts.file, problems);
  const config = resolvePaths(parsed.data, opts.baseDir);
  const owners = ownershipProblems(config, opts.env ?? process.env);
  if (owners.length > 0) throw new ConfigError(opts.file, owners);
  return deepFreeze(config);
}

/**
 * One owner per stack key: two targets may not own the same config key of the same stack, and
 * an inline target's stack belongs to it alone (its program exports only its own keys, so a
 * second inline target would delete the first one's outputs at every `up`). Compared by stack
 * key (backend, project, stack), so other spellings of one folder and copies of one project
 * are caught too.
 */
function ownershipProblems(c: Config, env: NodeJS.ProcessEnv): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const keyOwners = new Map<string, string>();
  const inlineOwners = new Map<string, string>();
  for (const [name, t] of Object.entries(c.targets)) {
    const stack = stackKeyOf(t, c.pulumi, env);
    // The driving key and every derived key: one owner each per stack.
    const owned: [string, string][] = [[`targets.${name}.configKey`, t.configKey], ...t.derived.map((d, i): [string, string] => [`targets.${name}.derived.${i}.key`, d.key])];
    for (const [at, key] of owned) {
      const other = keyOwners.get(`${stack}#${key}`);
      // Twice within one target is the schema's to say; here, another target's.
      if (other !== undefined && other !== name) problems.push({ path: at, message: `already owned by target ${other}` });
      keyOwners.set(`${stack}#${key}`, name);
    }
    if (t.inline !== undefined) {
      const owner = inlineOwners.get(stack);
      if (owner !== undefined) problems.push({ path: `targets.${name}.inline`, message: `project and stack already used by inline target ${owner}` });
      inlineOwners.set(stack, name);
    }
  }
  return problems;
}

/** Reads, parses and validates a config file. Throws ConfigError. */
export function loadConfig(file: string, env?: NodeJS.ProcessEnv): Readonly<Config> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read ${file}: ${(err as Error).message}` }]);
  }
  return parseConfig(text, { file, baseDir: path.dirname(path.resolve(file)), ...(env ? { env } : {}) });
}

function resolvePaths(c: Config, baseDir: string): Config {
  const abs = (p: string) => path.resolve(baseDir, p);
  const backendUrl = c.pulumi.backendUrl;
  const fileBackend = backendUrl?.startsWith('file://') && !backendUrl.startsWith('file:///') && backendUrl !== 'file://~';
  return {
    ...c,
    store: c.store.driver === 'sqlite' && c.store.path !== ':memory:' ? { ...c.store, path: abs(c.store.path) } : c.store,
    pulumi: {
      ...c.pulumi,
      ...(backendUrl ? { backendUrl: fileBackend ? `file://${abs(backendUrl.slice('file://'.length))}` : backendUrl } : {}),
      ...(c.pulumi.cliDir ? { cliDir: abs(c.pulumi.cliDir) } : {}),
    },
    targets: Object.fromEntries(
      Object.entries(c.targets).map(([name, t]) => [name, t.workDir ? { ...t, workDir: abs(t.workDir) } : t]),
    ),
  };
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** The configured targets with their names and stack keys, in config order. */
export function targetsOf(c: Readonly<Config>, env: NodeJS.ProcessEnv = process.env): TargetConfig[] {
  return Object.entries(c.targets).map(([name, t]) => ({ ...t, name, stackKey: stackKeyOf(t, c.pulumi, env) }));
}

/**
 * `${ENV_VAR}` interpolation over the parsed YAML tree (never over the raw text, so a value can
 * not inject YAML). `${NAME:-fallback}` gives a default; `$${` writes a literal `${`. An unset
 * variable without a default is a config problem reported with its path, like any other.
 */

export interface InterpolationIssue {
  path: (string | number)[];
  message: string;
}

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Returns a copy of `value` with every string interpolated from `env`, and the problems met. */
export function interpolate(
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: (string | number)[] = [],
  issues: InterpolationIssue[] = [],
): { value: unknown; issues: InterpolationIssue[] } {
  if (typeof value === 'string') {
    const out = value.replace(REF, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${';
      const v = env[name as string];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      // Set to nothing counts as unset (a secret left blank), said as what it is.
      issues.push({ path, message: `environment variable ${name} is ${v === '' ? 'set but empty' : 'not set'}` });
      return '';
    });
    return { value: out, issues };
  }
  if (Array.isArray(value)) {
    return { value: value.map((v, i) => interpolate(v, env, [...path, i], issues).value), issues };
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, [...path, k], issues).value;
    return { value: out, issues };
  }
  return { value, issues };
}

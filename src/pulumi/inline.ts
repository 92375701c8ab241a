/**
 * The program of an `inline.project` target: a "config stack" that owns no resources and
 * exports each of the target's config keys as a stack output, so other stacks read the value
 * through a StackReference (`web:replicas` becomes the output `replicas`).
 *
 * It runs inside the daemon's process (the Automation API serves it to the CLI over gRPC), so
 * it needs no language host, and it must stay free of I/O and of provider packages.
 */
import * as pulumi from '@pulumi/pulumi';
import type { PulumiFn } from '@pulumi/pulumi/automation/index.js';

/** Splits `namespace:key` at its first colon (a key may itself contain colons). */
export function splitConfigKey(configKey: string): { namespace: string; name: string } {
  const at = configKey.indexOf(':');
  if (at <= 0 || at === configKey.length - 1) {
    throw new Error(`config key "${configKey}" is not namespace:key`);
  }
  return { namespace: configKey.slice(0, at), name: configKey.slice(at + 1) };
}

/** The stack output an inline program exports for a config key: the part after the namespace. */
export function outputNameOf(configKey: string): string {
  return splitConfigKey(configKey).name;
}

/**
 * Builds the inline program for a target owning `configKeys`. A key absent from the stack's
 * config is not exported; a value that is not a number fails the update (Pulumi's own
 * `getNumber` check), so the outputs other stacks read are always numbers.
 */
export function inlineProgram(configKeys: readonly string[]): PulumiFn {
  return async () => {
    const outputs: Record<string, number> = {};
    for (const key of configKeys) {
      const { namespace, name } = splitConfigKey(key);
      const value = new pulumi.Config(namespace).getNumber(name);
      if (value !== undefined) outputs[name] = value;
    }
    return outputs;
  };
}

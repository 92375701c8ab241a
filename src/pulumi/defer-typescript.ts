/**
 * Keeps the TypeScript compiler out of the daemon's memory until something really uses it.
 *
 * `@pulumi/pulumi/automation` loads the SDK's runtime, whose closure serializer requires the
 * TypeScript compiler at load time (through the SDK's `typescript-shim.js`), although only
 * `serializeFunction` (a program turning a JavaScript function into a resource) ever calls it.
 * The daemon never does: loading it costs about 60 MiB of resident memory for nothing, nearly
 * half of an idle daemon.
 *
 * Importing this module first puts a stand-in for the shim in the CommonJS cache: an object that
 * loads the real shim on first use and forwards everything to it, so a program that does
 * serialize a function still gets the real compiler. Call {@link deferTypeScript} before
 * anything imports `@pulumi/pulumi` (the CLI's first import does).
 */
import Module, { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Whether the stand-in is in place (false when the SDK was loaded before, or has no shim). */
export function deferTypeScript(): boolean {
  let shim: string;
  try {
    shim = require.resolve('@pulumi/pulumi/typescript-shim.js');
  } catch {
    return false;
  }
  if (require.cache[shim] !== undefined) return false;
  let real: object | undefined;
  const load = (): object => {
    if (real === undefined) {
      // Out of the cache, so that require runs the real shim; it then stays cached for everyone.
      delete require.cache[shim];
      real = require(shim) as object;
    }
    return real;
  };
  const standIn = new Proxy(
    {},
    {
      get: (_, key): unknown => Reflect.get(load(), key),
      has: (_, key) => Reflect.has(load(), key),
      ownKeys: () => Reflect.ownKeys(load()),
      getOwnPropertyDescriptor: (_, key) => {
        const descriptor = Reflect.getOwnPropertyDescriptor(load(), key);
        // A proxy may only report configurable properties its target lacks.
        return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
      },
    },
  );
  const entry = new Module(shim);
  entry.filename = shim;
  entry.loaded = true;
  entry.exports = standIn;
  require.cache[shim] = entry;
  return true;
}

deferTypeScript();

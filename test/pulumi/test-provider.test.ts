/**
 * The psfile test provider (test/fixtures/provider, built by scripts/setup-test-provider.sh)
 * and the `filedrift` fixture project against the real Pulumi CLI on a file backend: resources
 * that are local files, so a test can change them behind Pulumi's back.
 *
 * Besides checking the provider, these tests pin down the CLI's JSON that drift detection and
 * the preview guard will read:
 *
 * - `pulumi refresh --preview-only --json` and `pulumi preview --json` print ONE JSON document
 *   `{ config, steps, duration, changeSummary }`. `changeSummary` counts resources per op
 *   (`{ same: 2, update: 1 }`; ops with no resource are absent, so read a missing one as 0).
 *   Each step has `op`, `urn`, `provider`, `oldState`, `newState` (each with `inputs` and
 *   `outputs`), `detailedDiff` (`{ <property>: { kind, inputDiff } }` or null), and when
 *   something changes `diffReasons` (the changed properties) and, for a replace,
 *   `replaceReasons` (the properties that force it).
 * - Drift is what `refresh --preview-only` reports: an edited resource is a step with op
 *   `update` (unchanged ones are op `refresh`), a resource that is gone is op `delete`.
 *   `preview --refresh` marks every refreshed resource op `refresh` (drifted or not) and then
 *   shows what `up` would do to put the program's values back, so it shows drift only through
 *   the program's diff.
 * - A replace in `preview --json` is one step with op `replace` and `changeSummary.replace`.
 * - `pulumi up --json --skip-preview` prints engine events, one JSON object a line; the last
 *   but one is `{ summaryEvent: { resourceChanges: { replace: 1, same: 2 }, result, ... } }`
 *   and a replace shows as the ops `create-replacement`, `replace`, `delete-replaced` in
 *   `resourcePreEvent.metadata.op`.
 *
 * The provider is made known to the CLI with `pulumi plugin install resource psfile 0.1.0
 * --file <binary>` into the sandbox's PULUMI_HOME (test/fixtures/projects/filedrift/README.md).
 */
import { access, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPulumiSandbox, fileBackendStack, pulumiOk, stackOutputs, type PulumiSandbox } from '../support/pulumi.js';
import { buildTestProvider, deployFileStack, type FileStack } from '../support/test-provider.js';

/** The version test/fixtures/provider/main.go reports. */
const PSFILE_VERSION = '0.1.0';
const PROJECT = 'filedrift';

/** A step of `pulumi preview --json` / `pulumi refresh --preview-only --json`. */
interface PreviewStep {
  op: string;
  urn: string;
  provider?: string;
  oldState?: { id?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> };
  newState?: { id?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> };
  diffReasons?: string[];
  replaceReasons?: string[];
  detailedDiff: Record<string, { kind: string; inputDiff: boolean }> | null;
}

/** The document `pulumi preview --json` and `pulumi refresh --preview-only --json` print. */
interface PreviewJson {
  config: Record<string, string>;
  steps: PreviewStep[];
  duration: number;
  changeSummary: Record<string, number>;
}

/** One line of `pulumi up --json --skip-preview`: an engine event. */
interface EngineEvent {
  sequence: number;
  timestamp: number;
  resourcePreEvent?: { metadata: { op: string; urn: string } };
  summaryEvent?: { resourceChanges: Record<string, number>; result: string; isPreview: boolean };
}

/** What `pulumi stack export` says of a resource. */
interface StateResource {
  urn: string;
  type: string;
  id?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

let sandbox: PulumiSandbox;

beforeAll(async () => {
  // Throws (failing every test with the setup command) when no CLI is installed.
  sandbox = await createPulumiSandbox();
  const binary = await buildTestProvider();
  await pulumiOk(sandbox, ['plugin', 'install', 'resource', 'psfile', PSFILE_VERSION, '--file', binary]);
}, 600_000);

afterAll(async () => {
  await sandbox?.cleanup();
});


async function previewJson(stack: FileStack, args: readonly string[]): Promise<PreviewJson> {
  return JSON.parse(await pulumiOk(sandbox, [...args, '--json', '--stack', stack.name], stack.dir)) as PreviewJson;
}

function urnOf(stack: FileStack, resource: string): string {
  return `urn:pulumi:${stack.name}::${PROJECT}::psfile:index:File::${resource}`;
}

function stepOf(preview: PreviewJson, urn: string): PreviewStep[] {
  return preview.steps.filter((step) => step.urn === urn);
}

/** The stack's resources as its state holds them (`pulumi stack export`). */
async function stateResources(stack: FileStack): Promise<StateResource[]> {
  const out = await pulumiOk(sandbox, ['stack', 'export', '--stack', stack.name], stack.dir);
  return (JSON.parse(out) as { deployment: { resources?: StateResource[] } }).deployment.resources ?? [];
}

async function stateOf(stack: FileStack, resource: string): Promise<StateResource | undefined> {
  return (await stateResources(stack)).find((r) => r.urn === urnOf(stack, resource));
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

describe('psfile test provider with the filedrift project', () => {
  it('up creates the files with the exact content, and the stack outputs replicas', async () => {
    const stack = await deployFileStack(sandbox, 'create', 3);

    expect(await readFile(path.join(stack.files, 'replicas.txt'), 'utf8')).toBe('replicas=3');
    expect(await readFile(path.join(stack.files, 'tier-small.txt'), 'utf8')).toBe('tier=small');
    expect(await stackOutputs(sandbox, fileBackendStack(PROJECT, stack.name))).toEqual({ replicas: 3 });
    const replicas = await stateOf(stack, 'replicasFile');
    expect(replicas).toMatchObject({
      type: 'psfile:index:File',
      id: path.join(stack.files, 'replicas.txt'),
      outputs: { path: path.join(stack.files, 'replicas.txt'), content: 'replicas=3' },
    });

    // A new replicas value is an in-place update of the same file.
    await pulumiOk(sandbox, ['config', 'set', 'web:replicas', '4', '--stack', stack.name], stack.dir);
    const update = await previewJson(stack, ['preview']);
    expect(update.changeSummary).toEqual({ same: 2, update: 1 });
    expect(stepOf(update, urnOf(stack, 'replicasFile'))).toMatchObject([
      { op: 'update', diffReasons: ['content'], detailedDiff: { content: { kind: 'update' } } },
    ]);
    await pulumiOk(sandbox, ['up', '--yes', '--skip-preview', '--stack', stack.name], stack.dir);
    expect(await readFile(path.join(stack.files, 'replicas.txt'), 'utf8')).toBe('replicas=4');
  });

  it('a hand edit is drift: refresh --preview-only reports an update of that file, and the state is untouched', async () => {
    const stack = await deployFileStack(sandbox, 'drift', 2);
    const replicasPath = path.join(stack.files, 'replicas.txt');
    await writeFile(replicasPath, 'replicas=7');

    const refresh = await previewJson(stack, ['refresh', '--preview-only']);

    // Drifted: op "update"; in sync: op "refresh" (counted as "same").
    expect(refresh.changeSummary).toEqual({ same: 2, update: 1 });
    expect(stepOf(refresh, urnOf(stack, 'replicasFile'))).toMatchObject([
      {
        op: 'update',
        diffReasons: ['content'],
        detailedDiff: { content: { kind: 'update', inputDiff: false } },
        oldState: { outputs: { content: 'replicas=2' } },
        newState: { outputs: { content: 'replicas=7' } },
      },
    ]);
    expect(stepOf(refresh, urnOf(stack, 'tierFile'))).toMatchObject([{ op: 'refresh' }]);
    expect(refresh.steps.filter((step) => step.op !== 'refresh')).toHaveLength(1);

    // preview --refresh marks every refreshed resource "refresh", drifted or not, then shows the
    // update that would write the program's value back.
    const previewRefresh = await previewJson(stack, ['preview', '--refresh']);
    expect(previewRefresh.changeSummary).toEqual({ same: 2, update: 1 });
    const replicasSteps = stepOf(previewRefresh, urnOf(stack, 'replicasFile'));
    expect(replicasSteps.map((step) => step.op)).toEqual(['refresh', 'update']);
    expect(replicasSteps[1]).toMatchObject({
      diffReasons: ['content'],
      oldState: { outputs: { content: 'replicas=7' } },
      newState: { inputs: { content: 'replicas=2' } },
    });

    // Neither wrote anything: the state still holds the deployed content, the file the edit.
    expect(await stateOf(stack, 'replicasFile')).toMatchObject({
      inputs: { content: 'replicas=2' },
      outputs: { content: 'replicas=2' },
    });
    expect(await readFile(replicasPath, 'utf8')).toBe('replicas=7');
  });

  it('a deleted file is drift too: refresh --preview-only reports the resource as deleted', async () => {
    const stack = await deployFileStack(sandbox, 'gone', 1);
    await rm(path.join(stack.files, 'tier-small.txt'));

    const refresh = await previewJson(stack, ['refresh', '--preview-only']);

    expect(refresh.changeSummary).toEqual({ same: 2, delete: 1 });
    expect(stepOf(refresh, urnOf(stack, 'tierFile'))).toMatchObject([{ op: 'delete' }]);
    expect(await stateOf(stack, 'tierFile')).toBeDefined();

    // A real refresh drops it from the state; the next up creates the file again.
    await pulumiOk(sandbox, ['refresh', '--yes', '--skip-preview', '--stack', stack.name], stack.dir);
    expect(await stateOf(stack, 'tierFile')).toBeUndefined();
    await pulumiOk(sandbox, ['up', '--yes', '--skip-preview', '--stack', stack.name], stack.dir);
    expect(await readFile(path.join(stack.files, 'tier-small.txt'), 'utf8')).toBe('tier=small');
  });

  it('a new tier previews as a replace of the tier file, and up replaces it', async () => {
    const stack = await deployFileStack(sandbox, 'replace', 2);
    const small = path.join(stack.files, 'tier-small.txt');
    const large = path.join(stack.files, 'tier-large.txt');
    await pulumiOk(sandbox, ['config', 'set', 'web:tier', 'large', '--stack', stack.name], stack.dir);

    const preview = await previewJson(stack, ['preview']);

    expect(preview.changeSummary).toEqual({ same: 2, replace: 1 });
    expect(stepOf(preview, urnOf(stack, 'tierFile'))).toMatchObject([
      {
        op: 'replace',
        replaceReasons: ['path'],
        detailedDiff: { path: { kind: 'update-replace' }, content: { kind: 'update' } },
        oldState: { id: small },
        newState: { inputs: { path: large, content: 'tier=large' } },
      },
    ]);
    expect([...(stepOf(preview, urnOf(stack, 'tierFile'))[0]?.diffReasons ?? [])].sort()).toEqual(['content', 'path']);
    expect(await exists(small)).toBe(true);
    expect(await exists(large)).toBe(false);

    const events = (await pulumiOk(sandbox, ['up', '--yes', '--skip-preview', '--json', '--stack', stack.name], stack.dir))
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as EngineEvent);

    const summary = events.find((event) => event.summaryEvent !== undefined)?.summaryEvent;
    expect(summary).toMatchObject({ resourceChanges: { same: 2, replace: 1 }, result: 'succeeded', isPreview: false });
    const tierOps = events
      .filter((event) => event.resourcePreEvent?.metadata.urn === urnOf(stack, 'tierFile'))
      .map((event) => event.resourcePreEvent?.metadata.op);
    expect(tierOps).toEqual(['create-replacement', 'replace', 'delete-replaced']);
    expect(await exists(small)).toBe(false);
    expect(await readFile(large, 'utf8')).toBe('tier=large');
    expect(await stateOf(stack, 'tierFile')).toMatchObject({ id: large, outputs: { path: large, content: 'tier=large' } });
  });
});

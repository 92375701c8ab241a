/**
 * previewRefresh and refreshStack (src/pulumi/refresh.ts) against the real Pulumi CLI: stacks of
 * the `filedrift` fixture project, whose resources are local files made by the psfile test
 * provider, so editing or removing a file is drift. The stack is opened with
 * `LocalWorkspace.selectStack` on the sandbox's file backend, as the executor opens a project
 * folder's stack, and the state is read back with `pulumi stack export`, never from the report.
 *
 * Holding a refresh mid-way: the tier file is swapped for a FIFO, so the provider's read of it
 * blocks until the test writes to it. Once the provider has it open, the refresh is provably
 * running; the test aborts, lets the CLI take the SIGINT, then feeds the FIFO so the CLI can
 * finish cancelling.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { open, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import * as pulumi from '@pulumi/pulumi';
import { LocalWorkspace, type Stack } from '@pulumi/pulumi/automation/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { previewRefresh, refreshStack, type DriftReport } from '../../src/pulumi/refresh.js';
import { createPulumiSandbox, pulumiOk, type PulumiSandbox } from '../support/pulumi.js';
import { deployFileStack, fileUrn, installTestProvider, sandboxCommand, selectFileStack, type FileStack } from '../support/test-provider.js';

let sandbox: PulumiSandbox;

beforeAll(async () => {
  // Throws (failing every test with the setup command) when no CLI or no Go is installed.
  sandbox = await createPulumiSandbox();
  await installTestProvider(sandbox);
}, 600_000);

afterAll(async () => {
  await sandbox?.cleanup();
});

/** A deployed filedrift stack and the Automation API's handle on it. */
async function deployed(name: string, replicas: number): Promise<{ fs: FileStack; stack: Stack }> {
  const fs = await deployFileStack(sandbox, name, replicas);
  return { fs, stack: await selectFileStack(sandbox, fs) };
}

/** What the stack's state says a resource's outputs are (`pulumi stack export`); undefined when it has no such resource. */
async function stateOutputs(fs: FileStack, resource: string): Promise<Record<string, unknown> | undefined> {
  const out = await pulumiOk(sandbox, ['stack', 'export', '--stack', fs.name], fs.dir);
  const resources = (JSON.parse(out) as { deployment: { resources?: { urn: string; outputs?: Record<string, unknown> }[] } }).deployment.resources ?? [];
  return resources.find((r) => r.urn === fileUrn(fs, resource))?.outputs;
}

/** A psfile resource declared by an inline program (the SDK's CustomResource is abstract). */
class PsFile extends pulumi.CustomResource {
  constructor(name: string, args: { path: string; content: string }) {
    super('psfile:index:File', name, args);
  }
}

const NO_DRIFT: DriftReport = { changes: {}, resources: [] };

/** Swaps a file for a FIFO: the provider's read of it then waits for a writer. */
async function makeBlocking(file: string): Promise<void> {
  await rm(file);
  await promisify(execFile)('mkfifo', [file]);
}

/**
 * Resolves, with a handle that feeds it, once a reader has the FIFO open (a non-blocking open for
 * writing fails with ENXIO until then); rejects when `op` settles first.
 */
async function whenReading(fifo: string, op: Promise<unknown>): Promise<FileHandle> {
  let settled = false;
  op.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (;;) {
    if (settled) throw new Error('the refresh ended before it read the blocking file');
    try {
      return await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
      await sleep(20);
    }
  }
}

/**
 * Starts `run` with a signal, aborts it while the provider is blocked reading the tier file,
 * lets the refresh finish cancelling, and resolves with how it settled. The file is put back.
 */
async function abortMidway(fs: FileStack, run: (signal: AbortSignal) => Promise<DriftReport>): Promise<PromiseSettledResult<DriftReport>> {
  const tier = path.join(fs.files, 'tier-small.txt');
  await makeBlocking(tier);
  const controller = new AbortController();
  const op = run(controller.signal);
  const outcome = Promise.allSettled([op]).then(([result]) => result);
  const feed = await whenReading(tier, op);
  controller.abort(new Error('stop'));
  // The SDK sends SIGINT at once; give the CLI time to take it before its read can complete.
  await sleep(1_000);
  await feed.write('tier=small');
  await feed.close();
  const result = await outcome;
  await rm(tier);
  await writeFile(tier, 'tier=small');
  return result;
}

describe('previewRefresh', () => {
  it('finds nothing when the files are as deployed', async () => {
    const { stack } = await deployed('in-sync', 2);

    expect(await previewRefresh(stack)).toEqual(NO_DRIFT);
  });

  it('reports a hand-edited file as an update of its content, and leaves the state alone', async () => {
    const { fs, stack } = await deployed('edited', 2);
    const replicas = path.join(fs.files, 'replicas.txt');
    await writeFile(replicas, 'replicas=7');

    const report = await previewRefresh(stack);

    expect(report).toEqual({
      changes: { update: 1 },
      resources: [{ urn: fileUrn(fs, 'replicasFile'), type: 'psfile:index:File', name: 'replicasFile', op: 'update', properties: ['content'] }],
    });
    expect(await stateOutputs(fs, 'replicasFile')).toMatchObject({ content: 'replicas=2' });
    expect(await readFile(replicas, 'utf8')).toBe('replicas=7');
    // Nothing was adopted, so a second look sees the same drift.
    expect(await previewRefresh(stack)).toEqual(report);
  });

  it('reports a deleted file as a delete', async () => {
    const { fs, stack } = await deployed('deleted', 2);
    await rm(path.join(fs.files, 'tier-small.txt'));

    expect(await previewRefresh(stack)).toEqual({
      changes: { delete: 1 },
      resources: [{ urn: fileUrn(fs, 'tierFile'), type: 'psfile:index:File', name: 'tierFile', op: 'delete', properties: [] }],
    });
    expect(await stateOutputs(fs, 'tierFile')).toMatchObject({ content: 'tier=small' });
  });

  it('rejects with the reason of a signal aborted mid-way, and the stack stays usable', async () => {
    const { fs, stack } = await deployed('preview-abort', 2);

    const result = await abortMidway(fs, (signal) => previewRefresh(stack, signal));

    expect(result).toMatchObject({ status: 'rejected', reason: new Error('stop') });
    expect(await previewRefresh(stack)).toEqual(NO_DRIFT);
  });

  it('rejects at once with a signal that is already aborted', async () => {
    const { stack } = await deployed('preview-aborted', 2);
    const reason = new Error('already');

    await expect(previewRefresh(stack, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});

describe('refreshStack', () => {
  it('adopts a hand edit into the state and reports it; afterwards previewRefresh finds nothing', async () => {
    const { fs, stack } = await deployed('adopt', 3);
    const replicas = path.join(fs.files, 'replicas.txt');
    await writeFile(replicas, 'replicas=8');

    const report = await refreshStack(stack);

    expect(report).toEqual({
      changes: { update: 1 },
      resources: [{ urn: fileUrn(fs, 'replicasFile'), type: 'psfile:index:File', name: 'replicasFile', op: 'update', properties: ['content'] }],
    });
    expect(await stateOutputs(fs, 'replicasFile')).toMatchObject({ content: 'replicas=8' });
    // A refresh reads the cloud; it never writes it.
    expect(await readFile(replicas, 'utf8')).toBe('replicas=8');
    expect(await previewRefresh(stack)).toEqual(NO_DRIFT);
  });

  it('drops a deleted file from the state', async () => {
    const { fs, stack } = await deployed('adopt-delete', 3);
    await rm(path.join(fs.files, 'tier-small.txt'));

    expect(await refreshStack(stack)).toMatchObject({ changes: { delete: 1 }, resources: [{ name: 'tierFile', op: 'delete' }] });
    expect(await stateOutputs(fs, 'tierFile')).toBeUndefined();
    expect(await refreshStack(stack)).toEqual(NO_DRIFT);
  });

  it('rejects with the reason of a signal aborted mid-way, and releases the stack', async () => {
    const { fs, stack } = await deployed('refresh-abort', 2);

    const result = await abortMidway(fs, (signal) => refreshStack(stack, signal));

    expect(result).toMatchObject({ status: 'rejected', reason: new Error('stop') });
    // No lock is left behind: a real refresh runs, and the state still holds the deployed files.
    expect(await refreshStack(stack)).toEqual(NO_DRIFT);
    expect(await stateOutputs(fs, 'tierFile')).toMatchObject({ content: 'tier=small' });
  });

  it("refreshes an inline program's stack through Stack.refresh", async () => {
    const files = path.join(sandbox.root, 'files', 'inline');
    const file = path.join(files, 'replicas.txt');
    const program = async (): Promise<void> => {
      new PsFile('replicasFile', { path: file, content: 'replicas=1' });
    };
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: 'inline', projectName: 'filedrift-inline', program },
      { pulumiCommand: await sandboxCommand(sandbox), envVars: { ...sandbox.pulumiEnv } },
    );
    await stack.up();
    await writeFile(file, 'replicas=5');

    expect(await refreshStack(stack)).toEqual({
      changes: { update: 1 },
      resources: [
        {
          urn: 'urn:pulumi:inline::filedrift-inline::psfile:index:File::replicasFile',
          type: 'psfile:index:File',
          name: 'replicasFile',
          op: 'update',
          properties: ['content'],
        },
      ],
    });
    expect(await previewRefresh(stack)).toEqual(NO_DRIFT);
  });
});

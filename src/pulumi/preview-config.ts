/**
 * A dry run's config: a temporary copy of the stack's settings file holding the previewed
 * values, handed to `pulumi preview --config-file`.
 *
 * Why a copy and never the real file: a preview that set the value in `Pulumi.<stack>.yaml` and
 * put the old one back afterwards leaves the previewed value behind when the daemon is killed
 * in between; the next start then reads it as current, and one later step deploys two. With a
 * copy, the stack's own config is never written by a dry run, whatever happens to the process.
 *
 * The copy keeps everything else of the original (secrets provider, encryption salt, other
 * keys), so the preview sees the stack exactly as `up` would, with only the owned keys changed.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';

/** A temporary settings file; `remove` deletes it (and its folder). */
export interface PreviewConfig {
  /** The path to pass as `configFile`. */
  file: string;
  remove(): Promise<void>;
}

/** The extensions the Automation API accepts for a stack settings file, in its order. */
const EXTENSIONS = ['.yaml', '.yml', '.json'] as const;

/**
 * Writes a copy of the stack's settings file (`Pulumi.<stack>.yaml` in `workDir`, or an empty
 * one when the stack has none yet) with `values` set as plaintext strings. A fully qualified
 * stack name (`org/project/stack`) names its file by the last part, as Pulumi does.
 */
export async function writePreviewConfig(workDir: string, stackName: string, values: Readonly<Record<string, string>>): Promise<PreviewConfig> {
  const short = stackName.split('/').pop() ?? stackName;
  const original = await readFirst(EXTENSIONS.map((ext) => path.join(workDir, `Pulumi.${short}${ext}`)));
  // A JSON settings file is also valid YAML, so one parser keeps comments and layout for both.
  const doc = parseDocument(original ?? '');
  if (doc.errors.length > 0) throw new Error(`the stack settings file of ${stackName} does not parse: ${doc.errors[0]?.message ?? ''}`);
  for (const [key, value] of Object.entries(values)) doc.setIn(['config', key], value);
  const dir = await mkdtemp(path.join(tmpdir(), 'pulumiscale-preview-'));
  const file = path.join(dir, `Pulumi.${short}.yaml`);
  try {
    await writeFile(file, doc.toString(), { mode: 0o600 });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { file, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The text of the first file that exists, or null when none does. */
async function readFirst(files: readonly string[]): Promise<string | null> {
  for (const file of files) {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return null;
}

/**
 * The daemon's Node.js options are set where it is launched, not in its code (V8 reads them at
 * start only): the image's ENTRYPOINT, `npm start`, and `npm run bench`, which must measure the
 * daemon as it ships. This keeps the three from drifting apart.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DAEMON_NODE_OPTIONS } from '../../bench/processes.js';

const read = (file: string): string => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

describe('the daemon is launched with the Node.js options the bench measures', () => {
  it('the image passes them before the CLI', () => {
    const entrypoint = read('Dockerfile')
      .split('\n')
      .find((line) => line.startsWith('ENTRYPOINT'));
    const args = JSON.parse(entrypoint?.slice('ENTRYPOINT'.length).trim() ?? '[]') as string[];
    const node = args.indexOf('node');
    expect(args.slice(node + 1, node + 1 + DAEMON_NODE_OPTIONS.length)).toEqual(DAEMON_NODE_OPTIONS);
    expect(args[node + 1 + DAEMON_NODE_OPTIONS.length]).toBe('/app/dist/cli.js');
  });

  it('npm start passes them too', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start ?? '';
    expect(start).toContain(`node ${DAEMON_NODE_OPTIONS.join(' ')} dist/cli.js serve`);
  });
});

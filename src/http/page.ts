/**
 * The status page's files: `GET /` serves the page, `GET /assets/<file>` its script and style,
 * from the build's `dist/web` (`npm run build` makes them from `web/`). Open without
 * credentials: the files hold no data; the page asks for the API's token and reads everything
 * through the API with it.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { PulumiScaleError } from '../errors.js';

/** The files served, and their types: nothing else of the folder is reachable. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/** Where the built page is: beside the compiled daemon (dist/web), or the build's when run from sources. */
function webDir(): string | null {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../web'), path.resolve(here, '../../dist/web')];
  return candidates.find((dir) => existsSync(path.join(dir, 'index.html'))) ?? null;
}

/** Registers `/` and `/assets/:file`. */
export function registerPageRoutes(app: FastifyInstance): void {
  const dir = webDir();
  const send = async (file: string): Promise<{ type: string; body: Buffer }> => {
    const type = FILES[file];
    if (type === undefined || !Object.hasOwn(FILES, file)) throw new PulumiScaleError('PS_NOT_FOUND', `no such file: ${file.slice(0, 80)}`);
    if (dir === null) throw new PulumiScaleError('PS_NOT_FOUND', 'the status page is not built: run npm run build');
    return { type, body: await readFile(path.join(dir, file)) };
  };
  app.get('/', async (_req, reply) => {
    const { type, body } = await send('index.html');
    return reply.type(type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(body);
  });
  app.get<{ Params: { file: string } }>('/assets/:file', async (req, reply) => {
    const { type, body } = await send(req.params.file);
    return reply.type(type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(body);
  });
}

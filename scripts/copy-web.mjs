// Copies the status page's static files (web/index.html, web/style.css) into dist/web, beside
// the app.js that `tsc -p tsconfig.web.json` compiles there. Part of `npm run build`.
import { copyFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const from = `${root}web/`;
const to = `${root}dist/web/`;

await mkdir(to, { recursive: true });
for (const file of ['index.html', 'style.css']) await copyFile(from + file, to + file);

/**
 * End to end, the status page (issue 13) in a real browser: Debian's chromium, headless, driven
 * by puppeteer-core, against the built daemon (`dist/cli.js serve`, which serves the page built
 * into dist/web) with the real Pulumi CLI on a file backend and API tokens set. The page asks
 * for the token; once given, an operator scales and pauses a target from it and sees the new
 * value, the `changed` event and the pause arrive over the live stream, without a reload.
 * Waiting is on the DOM (`waitForFunction` on mutations), never on sleeps. Screenshots at
 * desktop and phone width, light and dark, go to artifacts/screenshots/.
 *
 * A missing chromium is a failure naming the command that installs it, never a skip.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetState } from '../../src/types.js';
import { REPO, startDaemonProcess, type DaemonProcess } from '../support/daemon.js';
import { configGet, createPulumiSandbox, deployedStack, type FixtureStack, type PulumiSandbox } from '../support/pulumi.js';

/**
 * The page's globals as the callbacks below use them. Those callbacks run in the browser; this
 * file is compiled for Node (no DOM library), so what they touch is declared here, for this
 * module only.
 */
interface PageElement {
  textContent: string | null;
  hidden: boolean;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
}
interface PageControl extends PageElement {
  labels: ArrayLike<unknown> | null;
  getAttribute(name: string): string | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
  documentElement: { scrollWidth: number; clientWidth: number };
};
declare const window: Record<string, unknown>;
declare const sessionStorage: { getItem(key: string): string | null };
declare function requestAnimationFrame(callback: () => void): number;

const TOKEN = 'status-page-e2e-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const SCREENSHOTS = path.join(REPO, 'artifacts', 'screenshots');

/** The browser: $PULUMISCALE_CHROMIUM (scripts/setup-peers.sh prints it), else Debian's path. */
function chromiumPath(): string {
  const candidates = [process.env.PULUMISCALE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => p !== undefined && p !== '');
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error('no chromium found: run `bash scripts/setup-peers.sh` (it installs Debian\'s chromium) or set PULUMISCALE_CHROMIUM to a Chromium binary');
}

let sandbox: PulumiSandbox;
let stack: FixtureStack;
let browser: Browser;

beforeAll(async () => {
  const executablePath = chromiumPath();
  sandbox = await createPulumiSandbox();
  stack = await deployedStack(sandbox, 'page', 2);
  // --no-sandbox: the tests may run as root (CI, containers), where Chromium's sandbox cannot start.
  browser = await puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  mkdirSync(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await sandbox?.cleanup();
});

/** A daemon config (JSON, which is YAML too) with one target `web` on the stack, min 1, max 10. */
function daemonConfig(api: Record<string, unknown>, port = 0): string {
  const config = {
    server: { host: '127.0.0.1', port },
    engine: { evaluationInterval: '1s', drainTimeout: '1m' },
    store: { path: `./page-${port === 0 ? Date.now() : port}.db` },
    pulumi: { backendUrl: sandbox.backendUrl, cliDir: sandbox.cliDir, env: sandbox.pulumiEnv },
    api,
    log: { level: 'info' },
    targets: { web: { workDir: stack.dir, stack: stack.name, configKey: 'web:replicas', min: 1, max: 10, cooldown: { up: '0s', down: '0s' } } },
  };
  return JSON.stringify(config, null, 2);
}

type Tab = Awaited<ReturnType<typeof openPage>>;

/** Runs `body` against a daemon of {@link daemonConfig} with a fresh tab, then closes both. */
async function withDaemon(api: Record<string, unknown>, body: (d: DaemonProcess, tab: Tab) => Promise<void>, viewport = { width: 1280, height: 900 }): Promise<void> {
  const d = await startDaemonProcess(sandbox.root, daemonConfig(api), sandbox.env);
  const tab = await openPage(viewport.width, viewport.height);
  try {
    await body(d, tab);
  } catch (err) {
    throw withLogs(err, d);
  } finally {
    await tab.close();
    expect(await d.stop('SIGTERM')).toBe(0);
  }
}

/** `err` with the daemon's last log lines appended: what it was doing when the page did not show what was expected. */
function withLogs(err: unknown, d: DaemonProcess): Error {
  const lines = d.logs.slice(-15).map((l) => JSON.stringify(l));
  return new Error(`${err instanceof Error ? err.message : String(err)}\n--- the daemon's last log lines:\n${lines.join('\n')}`, { cause: err });
}

/**
 * A fresh tab, in a browser context of its own, at `width`×`height`, that records uncaught
 * errors, the requests it makes and the stream's Last-Event-IDs. `close()` closes the context:
 * a closed tab of the default context can leave a pooled keep-alive socket to the daemon open,
 * which the daemon's shutdown then waits on; a closed context closes its sockets.
 */
async function openPage(width: number, height: number): Promise<{ page: Page; close: () => Promise<void>; errors: string[]; requests: string[]; resumedFrom: (string | undefined)[] }> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(90_000);
  await page.setViewport({ width, height });
  const errors: string[] = [];
  const requests: string[] = [];
  const resumedFrom: (string | undefined)[] = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  page.on('request', (req) => {
    const url = new URL(req.url());
    requests.push(`${req.method()} ${url.pathname}${url.search}`);
    if (url.pathname === '/api/v1/stream') resumedFrom.push(req.headers()['last-event-id']);
  });
  return { page, close: () => context.close(), errors, requests, resumedFrom };
}

/** A TCP port free on 127.0.0.1 now (for a daemon restarted on the same address). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The trimmed text of the first element matching `selector` ('' when there is none). */
function textOf(page: Page, selector: string): Promise<string> {
  return page.evaluate((sel) => (document.querySelector(sel)?.textContent ?? '').replace(/\s+/g, ' ').trim(), selector);
}

/**
 * Waits, as the DOM changes, until the text of `selector` matches `pattern`; a timeout says what
 * the text was.
 */
async function waitForText(page: Page, selector: string, pattern: RegExp): Promise<void> {
  try {
    await page.waitForFunction(
      (sel, source, flags) => {
        const el = document.querySelector(sel);
        return el !== null && new RegExp(source, flags).test((el.textContent ?? '').replace(/\s+/g, ' '));
      },
      { polling: 'mutation' },
      selector,
      pattern.source,
      pattern.flags,
    );
  } catch (err) {
    throw new Error(`${selector} never matched ${String(pattern)}; its text: "${await textOf(page, selector)}"`, { cause: err });
  }
}

/** Whether the element matching `selector` is shown (exists, and neither it nor an ancestor is hidden). */
function shown(page: Page, selector: string): Promise<boolean> {
  return page.$eval(selector, (el) => (el as unknown as { checkVisibility(): boolean }).checkVisibility()).catch(() => false);
}

/** Resolves after the page has laid out and painted twice (a viewport change, the chart redrawn for it). */
async function settled(page: Page): Promise<void> {
  await page.evaluate(() => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve()))));
}

/** The target's state through the API, with the token. */
async function apiState(d: DaemonProcess): Promise<TargetState> {
  const res = await d.request<TargetState>('GET', '/api/v1/targets/web', undefined, AUTH);
  expect(res.status).toBe(200);
  return res.body;
}

const CARD = 'article[data-target="web"]';

describe('the status page, in chromium, against the built daemon and the real CLI', () => {
  it('asks for the token, then scales and pauses a target, showing the value, the event and the pause live', async () => {
    await withDaemon({ bearerTokens: [TOKEN] }, async (d, { page, errors, requests }) => {
      const response = await page.goto(`${d.url}/`);
      expect(response?.status()).toBe(200);

      // Without a token, only the login form: no target, no event, nothing else of the API.
      await page.waitForSelector('#login-token', { visible: true });
      expect(await shown(page, '#dashboard')).toBe(false);
      expect(await page.$(CARD)).toBeNull();
      expect(await page.$$eval('#events-body tr', (rows) => rows.length)).toBe(0);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'login-desktop.png') });

      // A wrong token is refused, and said so; nothing is kept.
      await page.type('#login-token', 'not-the-token');
      await page.keyboard.press('Enter');
      await waitForText(page, '#login-error', /refused/);
      expect(await page.evaluate(() => sessionStorage.getItem('pulumiscale.apiToken'))).toBeNull();

      // The right one, typed and sent from the keyboard.
      await page.click('#login-token', { count: 3 });
      await page.type('#login-token', TOKEN);
      await page.keyboard.press('Enter');
      await waitForText(page, `${CARD} [data-field="current"]`, /^\s*2\s*$/);
      expect(await shown(page, '#login')).toBe(false);
      expect(await shown(page, '#logout')).toBe(true);
      // Kept in the tab's session storage and sent as a bearer header: never a cookie.
      expect(await page.evaluate(() => sessionStorage.getItem('pulumiscale.apiToken'))).toBe(TOKEN);
      expect(await page.cookies()).toEqual([]);
      await waitForText(page, `${CARD} [data-field="bounds"]`, /1–10/);
      await waitForText(page, `${CARD} [data-field="pause"]`, /Not paused/);
      expect(await page.$(`${CARD} svg[role="img"] path.chart-line`)).not.toBeNull();

      // The live stream is open: from here on, what changes arrives on it (no polling).
      await page.waitForSelector('#connection[data-state="live"]');
      const liveSince = requests.length;
      // A mark on the window: still there at the end means the page never reloaded.
      await page.evaluate(() => {
        window.pageMark = 'same page';
      });

      // Scale to 5 from the page.
      await page.type(`${CARD} input[name="to"]`, '5');
      await page.click(`${CARD} form[data-action="scale"] button[type="submit"]`);
      await waitForText(page, `${CARD} .action-status`, /Queued: web to 5/);
      await waitForText(page, `${CARD} [data-field="current"]`, /^\s*5\s*$/);
      await waitForText(page, '#events-body tr[data-kind="changed"][data-target="web"]', /2 → 5.*api/);
      expect(await configGet(sandbox, stack.dir, stack.name, 'web:replicas')).toBe('5');

      // An out-of-bounds value: the API's refusal, shown with its code.
      await page.type(`${CARD} input[name="to"]`, '50');
      await page.click(`${CARD} form[data-action="scale"] button[type="submit"]`);
      await waitForText(page, `${CARD} .action-error`, /PS_OUT_OF_BOUNDS.*outside \[1, 10\]/);

      // Pause scaling up for 45 minutes, with a reason.
      await page.click(`${CARD} input[name="for"]`, { count: 3 });
      await page.type(`${CARD} input[name="for"]`, '45m');
      await page.select(`${CARD} select[name="direction"]`, 'up');
      await page.type(`${CARD} input[name="reason"]`, 'deploy freeze');
      await page.click(`${CARD} form[data-action="pause"] button[type="submit"]`);
      await waitForText(page, `${CARD} [data-field="pause"]`, /Scaling up paused until .*deploy freeze/);
      await waitForText(page, `${CARD} .badges`, /Paused/);
      expect((await apiState(d)).pause).toMatchObject({ direction: 'up', reason: 'deploy freeze' });

      // Nothing was polled while the stream was open, and the page is the one it was.
      const polled = requests.slice(liveSince).filter((r) => r === 'GET /api/v1/targets' || r.startsWith('GET /api/v1/events'));
      expect(polled).toEqual([]);
      expect(await page.evaluate(() => window.pageMark)).toBe('same page');
      expect(requests.filter((r) => r === 'GET /')).toHaveLength(1);

      // Basic accessibility: every control has a label, every button a name; one h1, sections with headings.
      const unlabelled = await page.$$eval('input, select', (controls) =>
        controls.filter((c) => ((c as unknown as PageControl).labels?.length ?? 0) === 0).map((c) => (c as unknown as PageControl).getAttribute('name')),
      );
      expect(unlabelled).toEqual([]);
      const unnamedButtons = await page.$$eval('button', (buttons) =>
        buttons.map((b) => b as unknown as PageElement).filter((b) => (b.textContent ?? '').trim() === '' && b.getAttribute('aria-label') === null).length,
      );
      expect(unnamedButtons).toBe(0);
      expect(await page.$$eval('h1', (hs) => hs.length)).toBe(1);
      expect(await page.$$eval('#events-table th[scope="col"]', (ths) => ths.length)).toBe(6);

      // Screenshots: desktop and phone width, light and dark. (Not `isMobile`: puppeteer reloads
      // the page to switch it, and the page's meta viewport makes the layout the same.)
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
        for (const [device, width, height] of [['desktop', 1280, 900], ['phone', 375, 812]] as const) {
          await page.setViewport({ width, height });
          await settled(page);
          // Nothing is wider than the screen: at phone width cards stack, the table's rows too.
          expect(await page.evaluate(() => document.documentElement.scrollWidth), `page width at ${width} px`).toBeLessThanOrEqual(width);
          await page.screenshot({ path: path.join(SCREENSHOTS, `status-${device}-${scheme}.png`), fullPage: true });
        }
      }
      await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
      await page.setViewport({ width: 1280, height: 900 });
      expect(await page.evaluate(() => window.pageMark)).toBe('same page');

      // Resume lifts the pause.
      await page.click(`${CARD} button[data-action="resume"]`);
      await waitForText(page, `${CARD} [data-field="pause"]`, /Not paused/);
      expect((await apiState(d)).pause).toBeNull();

      // Log out: the token is forgotten and only the login form is left.
      await page.click('#logout');
      await page.waitForSelector('#login-token', { visible: true });
      expect(await page.evaluate(() => sessionStorage.getItem('pulumiscale.apiToken'))).toBeNull();
      expect(await page.$(CARD)).toBeNull();

      expect(errors).toEqual([]);
    });
  });

  it('without api.bearerTokens, shows the targets at once: no login form, no logout', async () => {
    await withDaemon({}, async (d, { page, errors }) => {
      await page.goto(`${d.url}/`);
      await waitForText(page, `${CARD} [data-field="current"]`, /^\s*\d+\s*$/);
      expect(await shown(page, '#login')).toBe(false);
      expect(await shown(page, '#logout')).toBe(false);
      await page.waitForSelector('#connection[data-state="live"]');
      expect(errors).toEqual([]);
    });
  });

  it('polls while the daemon is away, shows that, and comes back live: what changed meanwhile shows without a reload', async () => {
    const port = await freePort();
    const config = daemonConfig({}, port);
    let d = await startDaemonProcess(sandbox.root, config, sandbox.env);
    const { page, close, errors, resumedFrom } = await openPage(1280, 900);
    try {
      await page.goto(`${d.url}/`);
      await page.waitForSelector('#connection[data-state="live"]');
      await waitForText(page, `${CARD} [data-field="current"]`, /^\s*\d+\s*$/);
      const before = Number(await textOf(page, `${CARD} [data-field="current"]`));
      await page.evaluate(() => {
        window.pageMark = 'same page';
      });
      // A pause and a resume through the API arrive as stream messages, each with an id.
      expect((await d.request('POST', '/api/v1/targets/web/pause', { for: '1h' })).status).toBe(200);
      await waitForText(page, `${CARD} [data-field="pause"]`, /Paused until/);
      expect((await d.request('POST', '/api/v1/targets/web/resume')).status).toBe(200);
      await waitForText(page, `${CARD} [data-field="pause"]`, /Not paused/);

      // The daemon goes away: the stream ends, polling starts and fails, and the page says so.
      expect(await d.stop('SIGTERM')).toBe(0);
      await page.waitForSelector('#connection[data-state="offline"]');
      await waitForText(page, '#banner', /Cannot reach the daemon/);

      // Back on the same address, it is scaled through the API (not from the page)…
      d = await startDaemonProcess(sandbox.root, config, sandbox.env);
      const to = before === 3 ? 4 : 3;
      expect((await d.request('POST', '/api/v1/targets/web/scale', { to })).status).toBe(202);
      // …and the page catches up on its own: the value, the event, the stream open again.
      await waitForText(page, `${CARD} [data-field="current"]`, new RegExp(`^\\s*${to}\\s*$`));
      await waitForText(page, '#events-body tr[data-kind="changed"][data-target="web"]', new RegExp(`${before} → ${to}`));
      await page.waitForSelector('#connection[data-state="live"]');
      expect(await shown(page, '#banner')).toBe(false);
      expect(await page.evaluate(() => window.pageMark)).toBe('same page');
      // The first connection had nothing to resume from; the reconnections sent the last id seen.
      expect(resumedFrom[0]).toBeUndefined();
      expect(resumedFrom.length).toBeGreaterThan(1);
      for (const id of resumedFrom.slice(1)) expect(id).toMatch(/^[0-9a-f]{8}-\d+$/);
      expect(errors).toEqual([]);
    } catch (err) {
      throw withLogs(err, d);
    } finally {
      await close();
      await d.stop('SIGTERM');
    }
  });

  it('parses the stream however its chunks split (the page\'s own parser, in the browser)', async () => {
    await withDaemon({}, async (d, { page }) => {
      await page.goto(`${d.url}/`);
      await page.waitForSelector(CARD);
      // The parser is exported by /assets/app.js; an import of the page's module gets that instance.
      const results = (await page.evaluate(`(async () => {
        const { SseParser } = await import('/assets/app.js');
        const text = ': hello\\r\\nid: a-1\\r\\nevent: state\\r\\ndata: {"x":\\r\\ndata: 1}\\r\\n\\r\\n' +
          'data: plain\\n\\nid: a-2\\nevent: event\\ndata:no-space\\n\\n: ping\\n\\nid\\n\\rdata: cr\\r\\r';
        const runs = [];
        for (const size of [1, 2, 3, 7, text.length]) {
          const got = [];
          const parser = new SseParser((m) => got.push(m));
          for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size));
          runs.push({ size, got, last: parser.lastEventId });
        }
        return runs;
      })()`)) as { size: number; got: unknown[]; last: string | null }[];
      for (const run of results) {
        expect(run.got, `chunks of ${run.size}`).toEqual([
          { event: 'state', data: '{"x":\n1}', id: 'a-1' },
          { event: 'message', data: 'plain', id: 'a-1' },
          { event: 'event', data: 'no-space', id: 'a-2' },
          { event: 'message', data: 'cr', id: '' },
        ]);
        expect(run.last).toBe('');
      }
    });
  });
});

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { PASSWORD } from './fixtures.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeResult {
  violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[];
}

/** Runs axe-core (WCAG 2.2 A and AA rules) on the page as it is now and returns its violations, readable. */
export async function axeViolations(page: Page): Promise<string[]> {
  // After a click the next page may still be on its way: check the page it leads to, once it is there (every
  // page has a main landmark; one without would fail here, as axe would fail it).
  await page.waitForLoadState('load');
  await page.locator('main').first().waitFor({ timeout: 10_000 });
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(() =>
    (window as unknown as { axe: { run(o: object): Promise<AxeResult> } }).axe.run({
      runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'],
    }),
  );
  return result.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
  );
}

// CI installs Debian's chromium (.ci/run); a developer without it is told, rather than shown a false pass.
export const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI)
  throw new Error(`Chromium not found at ${CHROMIUM}: .ci/run should have installed it`);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A new browser context (CSP bypassed for axe) signed in to the hub at `base` as `username`, on the home page.
 * `contextOptions` are added to the context's (e.g. { acceptDownloads: true } for a test that downloads a file).
 */
export async function signedInPage(
  browser: Browser,
  base: string,
  username: string,
  contextOptions: BrowserContextOptions = {},
): Promise<Page> {
  const context = await browser.newContext({ bypassCSP: true, ...contextOptions });
  const page = await context.newPage();
  await page.goto(`${base}/sign-in`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/`);
  return page;
}

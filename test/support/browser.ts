/**
 * Debian's Chromium, headless, driven by playwright-core: the flags this machine needs (no
 * background networking: its connections are refused here) and a fresh profile per launch.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** Screenshots of the pages the tests checked (gitignored), at the repository's test-artifacts/. */
export const ARTIFACTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../../test-artifacts");

export interface TestBrowser {
  context: BrowserContext;
  /** A new tab with a 1400×1000 viewport. */
  newPage(): Promise<Page>;
  /** Saves a full-page PNG as test-artifacts/<name>.png and returns its path. */
  screenshot(page: Page, name: string): Promise<string>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), "fem-chromium-"));
  // A persistent context is playwright's way to pass our own (fresh) --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: FLAGS,
    viewport: { width: 1400, height: 1000 },
    timeout: 30_000,
  });
  context.setDefaultTimeout(20_000);
  let closed = false;
  return {
    context,
    async newPage() {
      return context.newPage();
    },
    async screenshot(page, name) {
      const path = join(ARTIFACTS_DIR, `${name}.png`);
      await mkdir(dirname(path), { recursive: true });
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    async close() {
      if (closed) return;
      closed = true;
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}

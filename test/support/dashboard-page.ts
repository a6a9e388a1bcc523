/** Signing a browser tab in to the dashboard with an API token, for the browser suites. */
import type { Page } from "playwright-core";

/** Opens the dashboard, signs in with `token`, waits for the header to name `subject`, then opens `hash`. */
export async function openSignedIn(page: Page, origin: string, token: string, subject: string, hash: string): Promise<void> {
  await page.goto(`${origin}/`);
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.locator("[data-testid=signed-in-as]", { hasText: subject }).waitFor({ timeout: 15_000 });
  await page.evaluate(`window.location.hash = ${JSON.stringify(hash)}`);
}

/** Collects console errors and uncaught page errors (a CSP violation is a console error). */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("dialog", (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return problems;
}

/**
 * The dashboard's actions and run tools in a real browser against a real orchestrator and agents:
 * buttons shown by role (and the server's message when one is refused anyway), a node drained from
 * one tab seen live in another, an output approved by its node's operator and downloaded, the log
 * view's stream filters, search, jump and pause (across a dropped connection), and axe-core on
 * every page. Screenshots go to test-artifacts/dashboard/.
 */
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Page } from "playwright-core";
import { createApiToken } from "../../src/auth/index.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { gql, gqlOk, TEST_ADMIN_SUBJECT, TEST_ADMIN_TOKEN } from "../support/graphql.js";
import { finishedWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { launchBrowser, type TestBrowser } from "../support/browser.js";
import { seriousViolations } from "../support/axe.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { topics } from "../../src/live/topics.js";
import { waitUntil } from "../support/wait.js";

const test = suite("dashboard actions, outputs and log tools in the browser");
let env: TestEnv;
let browser: TestBrowser;
let proxy: TcpProxy;
let origin: string;
const tokens: Record<"researcher" | "viewer" | "operator", string> = { researcher: "", viewer: "", operator: "" };
const SUBJECTS = { researcher: "rita-researcher", viewer: "vic-viewer", operator: "olga-operator" } as const;

// Waits `count` ms (a run that stays RUNNING while the test acts).
const SLEEPER = `setTimeout(() => console.log('woke'), Number(process.argv[2] || 60000));`;
// "out <i>" on stdout and, every third line, "err <i>" on stderr; one line each `ms` ms.
const MIXED = `const n = Number(process.argv[2] || 30); const ms = Number(process.argv[1] || 0); let i = 0;
const tick = () => { i++; if (i % 3 === 0) console.error('err ' + i); else console.log('out ' + i); if (i < n) setTimeout(tick, ms); };
tick();`;
const REPORT = "require('fs').mkdirSync('out'); require('fs').writeFileSync('out/report.txt', 'the report\\n');";

test.before(async () => {
  env = await createTestEnv();
  const url = env.orchestrator.url;
  await env.registerNodes(["site-a", "site-r"], 4);
  const policy = join(env.sandboxRoot, "site-r-policy.yaml");
  await writeFile(policy, "allow: any\noutputs: review\nlogs: stream\n");
  await Promise.all([env.startAgent("site-a", { capacity: 4 }), env.startAgent("site-r", { capacity: 2, env: { FEM_POLICY_FILE: policy } })]);
  await registerNodeScriptTool(url, "sleeper", SLEEPER);
  await registerNodeScriptTool(url, "mixed", MIXED);
  await registerNodeScriptTool(url, "report", REPORT, { outputs: ["out/*.txt"] });
  for (const [who, role] of [["researcher", "RESEARCHER"], ["viewer", "VIEWER"]] as const) {
    await gqlOk(url, `mutation($s: String!, $r: ProjectRole!) { addProjectMember(project: "test", subject: $s, role: $r) { subject } }`, { s: SUBJECTS[who], r: role });
  }
  await gqlOk(url, `mutation($s: String!) { grantRole(subject: $s, role: NODE_OPERATOR) { roles } }`, { s: SUBJECTS.operator });
  await gqlOk(url, `mutation($s: String!) { grantNodeOperator(nodeId: "site-r", subject: $s) { id } }`, { s: SUBJECTS.operator });
  for (const who of ["researcher", "viewer", "operator"] as const) {
    tokens[who] = (await createApiToken(env.orchestrator.orm.em.fork(), { name: `${who}-dashboard`, ownerSubject: SUBJECTS[who], roles: [] })).token;
  }
  origin = new URL(url).origin;
  browser = await launchBrowser();
  proxy = await startTcpProxy(Number(new URL(url).port));
});

test.after(async () => {
  await browser?.close();
  await proxy?.stop();
  await env?.dispose();
});

/** A new tab signed in with `token` (as `subject`), at `hash`. */
async function tabAs(token: string, subject: string, hash: string, base = origin): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.locator("[data-testid=signed-in-as]", { hasText: subject }).waitFor({ timeout: 15_000 });
  await page.evaluate(`window.location.hash = ${JSON.stringify(hash)}`);
  return page;
}

async function submit(tasks: Record<string, unknown>[], name: string): Promise<{ id: string; tasks: { id: string; key: string; runs: { id: string }[] }[] }> {
  return (await gqlOk(env.orchestrator.url, SUBMIT, { input: { name, tasks } })).submitWorkflow;
}

async function expectAccessible(page: Page, what: string): Promise<void> {
  const violations = await seriousViolations(page);
  assert.equal(violations, [], `${what}: serious or critical accessibility violations`);
}

test("a RESEARCHER sees no drain/disable button; an ADMIN drains a node and the other tab shows it live; an operator acts on its own node only", async () => {
  const researcher = await tabAs(tokens.researcher, SUBJECTS.researcher, "#/nodes");
  const operator = await tabAs(tokens.operator, SUBJECTS.operator, "#/nodes");
  const admin = await tabAs(TEST_ADMIN_TOKEN, TEST_ADMIN_SUBJECT, "#/nodes");
  try {
    const researcherRow = researcher.locator("tr[data-node=site-a]");
    await researcherRow.locator("[data-testid=admin-state] [data-state=ACTIVE]").waitFor();
    assert.is(await researcher.locator("[data-testid=admin-actions]").count(), 0, "no admin-state buttons for a RESEARCHER");
    await operator.locator("tr[data-node=site-r] [data-testid=set-draining]").waitFor();
    assert.is(await operator.locator("[data-testid=admin-actions]").count(), 1, "buttons on the operated node only");
    await admin.locator("tr[data-node=site-a] [data-testid=set-draining]").click();
    await researcherRow.locator("[data-testid=admin-state] [data-state=DRAINING]").waitFor({ timeout: 15_000 });
    await admin.locator("tr[data-node=site-a] [data-testid=admin-state] [data-state=DRAINING]").waitFor();
    await browser.screenshot(admin, "dashboard/node-drained");
    await admin.locator("tr[data-node=site-a] [data-testid=set-active]").click();
    await researcherRow.locator("[data-testid=admin-state] [data-state=ACTIVE]").waitFor({ timeout: 15_000 });
    await expectAccessible(admin, "nodes page");
  } finally {
    await Promise.all([researcher.close(), operator.close(), admin.close()]);
  }
});

test("cancel and retry are shown to a RESEARCHER, not to a VIEWER; a refused action shows the server's message; cancel and retry change the graph live", async () => {
  const workflow = await submit([{ key: "sleep", tool: "sleeper@1.0.0", nodes: ["site-a"], params: { value: "x", count: 60_000 } }], "sleepy");
  const hash = `#/workflows/${workflow.id}/tasks/${workflow.tasks[0].id}`;
  const viewer = await tabAs(tokens.viewer, SUBJECTS.viewer, hash);
  const researcher = await tabAs(tokens.researcher, SUBJECTS.researcher, hash);
  try {
    await viewer.locator("[data-testid=task-runs] tbody tr").first().waitFor();
    await researcher.locator("[data-testid=cancel-workflow]").waitFor();
    assert.is(await viewer.locator("[data-testid=cancel-workflow], [data-testid=cancel-task], [data-testid=retry-task]").count(), 0, "a VIEWER gets no buttons");
    assert.is(await researcher.locator("[data-testid=cancel-task]").count(), 1);
    await expectAccessible(researcher, "workflow page");

    // Taken out of the project while the page is open: the button is still there, the server refuses.
    await gqlOk(env.orchestrator.url, `mutation($s: String!) { removeProjectMember(project: "test", subject: $s) { id } }`, { s: SUBJECTS.researcher });
    const refused = await gql(env.orchestrator.url, `mutation($id: ID!) { cancelWorkflow(id: $id) { id } }`, { id: workflow.id }, { token: tokens.researcher });
    const message = refused.errors?.[0]?.message;
    assert.ok(message, "the server refuses");
    researcher.once("dialog", (dialog) => void dialog.accept());
    await researcher.click("[data-testid=cancel-workflow]");
    const error = researcher.locator("[data-testid=action-error]");
    await error.waitFor();
    assert.is((await error.textContent())?.trim(), message);
    await browser.screenshot(researcher, "dashboard/action-refused");
    await gqlOk(env.orchestrator.url, `mutation($s: String!) { addProjectMember(project: "test", subject: $s, role: RESEARCHER) { subject } }`, { s: SUBJECTS.researcher });

    await researcher.reload();
    researcher.once("dialog", (dialog) => void dialog.accept());
    await researcher.click("[data-testid=cancel-workflow]");
    await viewer.locator("h1 [data-state=CANCELLED]").waitFor({ timeout: 30_000 });
    await researcher.locator("[data-testid=retry-task]").click();
    // The retry's new attempt appears in both tabs, running again.
    await viewer.locator("[data-testid=task-runs] tbody tr").nth(1).waitFor({ timeout: 30_000 });
    await viewer.locator("[data-task-key=sleep][data-state=RUNNING]").waitFor({ timeout: 30_000 });
    await gqlOk(env.orchestrator.url, `mutation($id: ID!) { cancelWorkflow(id: $id) { id } }`, { id: workflow.id });
  } finally {
    await Promise.all([viewer.close(), researcher.close()]);
  }
});

test("the node's operator approves a PENDING_REVIEW output with a comment and downloads it; a RESEARCHER sees no approve button", async () => {
  const workflow = await submit([{ key: "report", tool: "report@1.0.0", nodes: ["site-r"], params: { value: "x" } }], "report");
  const runId = workflow.tasks[0].runs[0].id;
  await finishedWorkflow(env.orchestrator.url, workflow.id);
  await waitUntil(
    async () => (await gqlOk(env.orchestrator.url, `query($id: ID!) { run(id: $id) { outputs { state } } }`, { id: runId })).run.outputs[0]?.state === "PENDING_REVIEW" || undefined,
    15_000,
    "the output waiting for review",
  );
  const researcher = await tabAs(tokens.researcher, SUBJECTS.researcher, `#/runs/${runId}`);
  const operator = await tabAs(tokens.operator, SUBJECTS.operator, `#/runs/${runId}`);
  try {
    const researcherRow = researcher.locator("tr[data-artifact='out/report.txt']");
    await researcherRow.locator("[data-state=PENDING_REVIEW]").waitFor();
    assert.is(await researcher.locator("[data-testid=approve]").count(), 0, "a RESEARCHER may not decide");
    const row = operator.locator("tr[data-artifact='out/report.txt']");
    await row.locator("[data-state=PENDING_REVIEW]").waitFor();
    const sha = createHash("sha256").update("the report\n").digest("hex");
    assert.is((await row.locator(".hash").textContent())?.trim(), sha);
    await expectAccessible(operator, "run page with an output to review");
    await row.locator("[data-testid=decision-comment]").fill("checked: aggregate only");
    await row.locator("[data-testid=approve]").click();
    await row.getByText(SUBJECTS.operator).waitFor();
    await row.getByText("checked: aggregate only").waitFor();
    await browser.screenshot(operator, "dashboard/output-approved");
    // The transfer is followed live (runOutputsUpdated) in both tabs: no reload, no polling.
    await row.locator("[data-state=AVAILABLE]").waitFor({ timeout: 30_000 });
    await researcherRow.locator("[data-state=AVAILABLE]").waitFor({ timeout: 10_000 });
    await researcherRow.locator("[data-testid=download]").waitFor();
    const [download] = await Promise.all([operator.waitForEvent("download"), row.locator("[data-testid=download]").click()]);
    assert.is(download.suggestedFilename(), "report.txt");
    const saved = await download.path();
    assert.is(await readFile(saved, "utf8"), "the report\n");
  } finally {
    await Promise.all([researcher.close(), operator.close()]);
  }
});

test("the log view filters by stream and search, jumps to a seq, and pauses across a dropped connection with no gap and no duplicate", async () => {
  const workflow = await submit([{ key: "mixed", tool: "mixed@1.0.0", nodes: ["site-a"], params: { value: "150", count: 60 } }], "mixed log");
  const runId = workflow.tasks[0].runs[0].id;
  const page = await tabAs(TEST_ADMIN_TOKEN, TEST_ADMIN_SUBJECT, `#/runs/${runId}`, `http://127.0.0.1:${proxy.port}`);
  const seqs = async () => (await page.evaluate(`[...document.querySelectorAll('[data-testid=log] .log-line')].map((e) => Number(e.getAttribute('data-seq')))`)) as number[];
  const count = async () => Number(((await page.locator("[data-testid=log-count]").textContent()) ?? "0").split(" ")[0]);
  try {
    await waitUntil(async () => (await count()) >= 10 || undefined, 30_000, "ten lines");
    await page.click("[data-testid=log-pause]");
    await page.locator("[data-testid=log-pause][aria-pressed=true]").waitFor();
    const held = Math.max(...(await seqs()));
    // The header's reconnect indicator may show only briefly: record whether it ever does.
    await page.evaluate(`new MutationObserver(() => { if (document.querySelector('.top .connection')?.textContent?.includes('Reconnecting')) window.__reconnecting = true; })
      .observe(document.body, { subtree: true, childList: true, characterData: true })`);
    proxy.drop();
    await waitUntil(async () => (await count()) > held + 5 || undefined, 30_000, "lines arriving while paused, after the drop");
    assert.is(Math.max(...(await seqs())), held, "a paused view holds still");
    assert.is(await page.evaluate("window.__reconnecting === true"), true, "the header said it was reconnecting");
    await page.click("[data-testid=log-pause]");
    await page.locator("h1 [data-state=SUCCEEDED]").waitFor({ timeout: 30_000 });
    const total = (await gqlOk(env.orchestrator.url, `query($id: ID!) { run(id: $id) { logLineCount } }`, { id: runId })).run.logLineCount as number;
    await waitUntil(async () => (await count()) === total || undefined, 15_000, `${total} lines`);
    assert.equal(await seqs(), Array.from({ length: total }, (_, i) => i + 1), "every seq once, in order, after pause and drop");

    await page.uncheck("[data-testid=log-stream-stdout]");
    await page.uncheck("[data-testid=log-stream-system]");
    const streams = (await page.evaluate(`[...document.querySelectorAll('[data-testid=log] .log-line')].map((e) => e.getAttribute('data-stream'))`)) as string[];
    assert.equal([...new Set(streams)], ["STDERR"]);
    assert.is(streams.length, 20, "every third of 60 lines is on stderr");
    await page.check("[data-testid=log-stream-stdout]");
    await page.check("[data-testid=log-stream-system]");

    await page.fill("[data-testid=log-search]", "OUT 1");
    await page.locator("[data-testid=log-matches]", { hasText: "matching" }).waitFor();
    const matching = Number(((await page.locator("[data-testid=log-matches]").textContent()) ?? "").split(" ")[0]);
    assert.ok((await page.locator("[data-testid=log] mark").count()) >= 8, "matches highlighted");
    await page.check("[data-testid=log-only-matching]");
    const texts = await page.locator("[data-testid=log] .text").allTextContents();
    assert.is(texts.length, matching, "only the matching lines are shown");
    assert.ok(texts.every((t) => t.toLowerCase().includes("out 1")), texts.join(" | "));
    // out 1, out 10, 11, 13, 14, 16, 17, 19 (12, 15, 18 are on stderr); SYSTEM lines may match too.
    assert.equal(texts.filter((t) => t.startsWith("out ")), ["out 1", "out 10", "out 11", "out 13", "out 14", "out 16", "out 17", "out 19"]);
    await browser.screenshot(page, "dashboard/log-search");
    await page.uncheck("[data-testid=log-only-matching]");
    await page.fill("[data-testid=log-search]", "");

    const target = Math.floor(total / 2);
    await page.fill("[data-testid=log-jump]", String(target));
    await page.press("[data-testid=log-jump]", "Enter");
    await page.locator(`[data-testid=log] .log-line.target[data-seq="${target}"]`).waitFor();
    assert.ok(await page.locator(`[data-testid=log] .log-line.target[data-seq="${target}"]`).isVisible());
    await page.fill("[data-testid=log-jump]", String(total + 100));
    await page.press("[data-testid=log-jump]", "Enter");
    await page.locator("[data-testid=log-jump-error]", { hasText: "not written yet" }).waitFor();
    await expectAccessible(page, "run page with its log");
  } finally {
    await page.close();
  }
});

test("axe-core finds no serious or critical violation on the sign-in and workflows pages", async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${origin}/`);
    await page.locator("#token").waitFor();
    await expectAccessible(page, "sign-in page");
    await page.close();
    const signedIn = await tabAs(TEST_ADMIN_TOKEN, TEST_ADMIN_SUBJECT, "#/workflows");
    try {
      await signedIn.locator("[data-testid=workflows] tbody tr").first().waitFor();
      await expectAccessible(signedIn, "workflows page");
    } finally {
      await signedIn.close();
    }
  } finally {
    if (!page.isClosed()) await page.close();
  }
});

test("the workflows list filters by state, submitter and project, and its progress stays live", async () => {
  const done = await submit([{ key: "quick", tool: "mixed@1.0.0", nodes: ["site-a"], params: { value: "0", count: 3 } }], "quick one");
  await finishedWorkflow(env.orchestrator.url, done.id);
  const running = await submit([{ key: "sleep", tool: "sleeper@1.0.0", nodes: ["site-a"], params: { value: "x", count: 60_000 } }], "still running");
  const page = await tabAs(TEST_ADMIN_TOKEN, TEST_ADMIN_SUBJECT, "#/workflows");
  try {
    await page.locator(`tr[data-workflow="${running.id}"]`).waitFor();
    await page.selectOption("[data-testid=filter-state]", "SUCCEEDED");
    await page.click("[data-testid=workflow-filters] button[type=submit]");
    await page.locator(`tr[data-workflow="${running.id}"]`).waitFor({ state: "detached" });
    await page.locator(`tr[data-workflow="${done.id}"]`).waitFor();
    await page.selectOption("[data-testid=filter-state]", "");
    await page.fill("[data-testid=filter-submitter]", "nobody-at-all");
    await page.click("[data-testid=workflow-filters] button[type=submit]");
    await page.getByText("No workflows match the filter").waitFor();
    await page.fill("[data-testid=filter-submitter]", TEST_ADMIN_SUBJECT);
    await page.selectOption("[data-testid=filter-project]", { label: "test" });
    await page.click("[data-testid=workflow-filters] button[type=submit]");
    const row = page.locator(`tr[data-workflow="${running.id}"]`);
    await row.waitFor();
    assert.is((await row.locator("[data-testid=progress]").textContent())?.trim(), "0/1");
    await gqlOk(env.orchestrator.url, `mutation($id: ID!) { cancelWorkflow(id: $id) { id } }`, { id: running.id });
    await row.locator("[data-state=CANCELLED]").waitFor({ timeout: 15_000 });
    assert.is((await row.locator("[data-testid=progress]").textContent())?.trim(), "1/1");
    await browser.screenshot(page, "dashboard/workflows-filtered");
  } finally {
    await page.close();
  }
});

test("a workflow submitted after the workflows page opened appears without a reload, if the page's filters admit it", async () => {
  const page = await tabAs(TEST_ADMIN_TOKEN, TEST_ADMIN_SUBJECT, "#/workflows");
  try {
    await page.fill("[data-testid=filter-submitter]", SUBJECTS.researcher);
    await page.click("[data-testid=workflow-filters] button[type=submit]");
    await page.getByText("No workflows match the filter").waitFor();
    await env.orchestrator.pubsub.waitForSubscribers(topics.submittedWorkflows, 1, 10_000);
    // A reload or navigation would drop this mark.
    await page.evaluate("window.__sameDocument = true");
    const task = { key: "quick", tool: "mixed@1.0.0", nodes: ["site-a"], params: { value: "0", count: 3 } };
    const filteredOut = (await gqlOk(env.orchestrator.url, SUBMIT, { input: { name: "by the admin", tasks: [task] } })).submitWorkflow as { id: string };
    const admitted = (await gqlOk(env.orchestrator.url, SUBMIT, { input: { name: "by the researcher", tasks: [task] } }, { token: tokens.researcher })).submitWorkflow as { id: string };
    await page.locator(`tr[data-workflow="${admitted.id}"]`).waitFor({ timeout: 15_000 });
    // The list was asked again after the later submission: the admin's workflow, not by the filtered submitter, is not in it.
    assert.is(await page.locator(`tr[data-workflow="${filteredOut.id}"]`).count(), 0);
    assert.is(await page.evaluate("window.__sameDocument === true"), true, "the page was not reloaded");
    // The new row is live too: its run finishes and the row says so.
    await page.locator(`tr[data-workflow="${admitted.id}"] [data-state=SUCCEEDED]`).waitFor({ timeout: 30_000 });
    await browser.screenshot(page, "dashboard/workflows-live-new");
  } finally {
    await page.close();
  }
});

test.run();

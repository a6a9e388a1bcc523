/**
 * The dashboard's accounting and administration pages in a real browser against a real
 * orchestrator and agents: an admin registers a node (its credential shown once starts a real
 * agent), registers a tool from pasted YAML, creates and revokes an API token and finds those
 * actions in the audit log; accounting shows a finished workflow's figures (and, live, those of runs
 * that end while it is open) and exports them as
 * CSV; a RESEARCHER sees no admin links. Screenshots go to test-artifacts/dashboard/.
 */
import { readFile } from "node:fs/promises";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createApiToken } from "../../src/auth/index.js";
import { launchBrowser, type TestBrowser } from "../support/browser.js";
import { openSignedIn, watchProblems } from "../support/dashboard-page.js";
import { createTestEnv, type TestEnv } from "../support/env.js";
import { finishedWorkflow, registerNodeScriptTool, SUBMIT } from "../support/fixtures.js";
import { gql, gqlOk, TEST_ADMIN_SUBJECT, TEST_ADMIN_TOKEN } from "../support/graphql.js";
import { waitUntil } from "../support/wait.js";

const test = suite("dashboard admin and accounting pages in the browser");
let env: TestEnv;
let browser: TestBrowser;
let origin: string;

const ECHO = `console.log('hello ' + process.argv[1]);`;
const RESEARCHER = "researcher-of-test";
const OWNER = "owner-of-test";

test.before(async () => {
  env = await createTestEnv();
  await env.registerNodes(["site-a"], 2);
  await env.startAgent("site-a", { capacity: 2 });
  await registerNodeScriptTool(env.orchestrator.url, "echo", ECHO);
  origin = new URL(env.orchestrator.url).origin;
  browser = await launchBrowser();
});

test.after(async () => {
  await browser?.close();
  await env?.dispose();
});

async function adminPage(hash: string) {
  const page = await browser.newPage();
  const problems = watchProblems(page);
  await openSignedIn(page, origin, TEST_ADMIN_TOKEN, TEST_ADMIN_SUBJECT, hash);
  return { page, problems };
}

test("an admin registers a node and sees its credential once, with a start command whose credential starts a real agent", async () => {
  const { page, problems } = await adminPage("#/admin/nodes");
  try {
    await page.fill("[data-testid=node-id]", "site-new");
    await page.getByLabel("Capacity (runs at once)").fill("3");
    await page.click("button:has-text('Register node')");
    const credential = await page.locator("[data-testid=node-credential]").inputValue();
    assert.match(credential, /^fem_node_/);
    const command = await page.locator("[data-testid=agent-command]").inputValue();
    assert.ok(command.includes(`printf '%s' '${credential}' > /etc/fem/node.credential`), command);
    assert.ok(command.includes("FEM_NODE_ID='site-new'") && command.includes("FEM_CAPACITY=3"), command);
    const key = await page.locator("[data-testid=orchestrator-key]").inputValue();
    assert.match(key, /^-----BEGIN PUBLIC KEY-----/);
    await browser.screenshot(page, "dashboard/admin-node-credential");
    // The credential the page showed is the node's: its agent connects with it.
    await env.startAgent("site-new", { capacity: 3, credential });
    await waitUntil(
      async () => (await gqlOk(env.orchestrator.url, `{ node(id: "site-new") { connectivity capacity } }`)).node.connectivity === "ONLINE" || undefined,
      30_000,
      "site-new online with the credential from the page",
    );
    await page.click("button:has-text('Done, I have copied it')");
    await page.locator("[data-testid=node-id]").waitFor();
    assert.not.ok((await page.content()).includes(credential), "the credential is gone once closed");
    await page.evaluate(`window.location.hash = '#/nodes'`);
    await page.locator("tr[data-node=site-new] [data-testid=connectivity]", { hasText: "ONLINE" }).waitFor();
    assert.not.ok((await page.content()).includes(credential), "no other page shows it");
    // Registering the same id again shows the server's refusal.
    const refused = await gql(env.orchestrator.url, `mutation { registerNode(input: { id: "site-new" }) { credential } }`);
    await page.evaluate(`window.location.hash = '#/admin/nodes'`);
    await page.fill("[data-testid=node-id]", "site-new");
    await page.click("button:has-text('Register node')");
    assert.is((await page.locator("[data-testid=action-error]").textContent())?.trim(), refused.errors?.[0]?.message);
    assert.equal(problems, []);
  } finally {
    await page.close();
  }
});

test("an admin registers a tool from pasted YAML, and a bad definition shows the server's message", async () => {
  const { page, problems } = await adminPage("#/admin/tools");
  try {
    const yaml = [`name: yaml-tool`, `version: "2.1.0"`, `executable: ${JSON.stringify(process.execPath)}`, `args:`, `  - { id: value, type: STRING, position: 0, default: "x" }`, `timeoutSeconds: 60`].join("\n");
    await page.fill("[data-testid=tool-definition]", yaml);
    await page.click("button:has-text('Register tool')");
    await page.locator("[data-testid=action-ok]", { hasText: "Registered yaml-tool@2.1.0" }).waitFor();
    await page.locator("tr[data-tool='yaml-tool@2.1.0']").waitFor();
    const tool = await gqlOk(env.orchestrator.url, `{ tool(id: "yaml-tool@2.1.0") { executable timeoutSeconds args { id position } } }`);
    assert.equal(tool.tool, { executable: process.execPath, timeoutSeconds: 60, args: [{ id: "value", position: 0 }] });
    await browser.screenshot(page, "dashboard/admin-tools");
    const bad = { name: "bad-tool", version: "1.0.0", executable: "", timeoutSeconds: -5 };
    const refused = await gql(env.orchestrator.url, `mutation($input: RegisterToolInput!) { registerTool(input: $input) { id } }`, { input: bad });
    await page.fill("[data-testid=tool-definition]", JSON.stringify(bad));
    await page.click("button:has-text('Register tool')");
    assert.is((await page.locator("[data-testid=action-error]").textContent())?.trim(), refused.errors?.[0]?.message);
    assert.equal(problems, []);
  } finally {
    await page.close();
  }
});

test("creates an API token shown once that works, then revokes it", async () => {
  const { page, problems } = await adminPage("#/tokens");
  try {
    await page.fill("[data-testid=token-name]", "notebook");
    await page.click("button:has-text('Create token')");
    const token = await page.locator("[data-testid=new-token]").inputValue();
    const me = await gqlOk(env.orchestrator.url, "{ me { subject roles } }", {}, { token });
    assert.equal(me.me, { subject: TEST_ADMIN_SUBJECT, roles: [] }, "the token acts as its creator, with no role asked for");
    await browser.screenshot(page, "dashboard/admin-token-created");
    await page.click("button:has-text('Done, I have copied it')");
    assert.not.ok((await page.content()).includes(token));
    const row = page.locator("tr[data-token=notebook]");
    assert.is((await row.locator("[data-testid=token-state]").textContent())?.trim(), "active");
    await row.locator("button", { hasText: "Revoke" }).click();
    await row.locator("[data-testid=token-state]", { hasText: "revoked" }).waitFor();
    const refused = await gql(env.orchestrator.url, "{ me { subject } }", {}, { token });
    assert.is(refused.errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
    assert.equal(problems, []);
  } finally {
    await page.close();
  }
});

test("the audit log shows those actions, filtered by action", async () => {
  const { page, problems } = await adminPage("#/admin/audit");
  try {
    const rows = page.locator("[data-testid=audit] tbody tr");
    await rows.first().waitFor();
    for (const action of ["registerNode", "registerTool", "createApiToken", "revokeApiToken"]) {
      assert.ok((await page.locator(`[data-testid=audit] tr[data-action=${action}]`).count()) > 0, `${action} is in the newest page`);
    }
    await page.fill("[data-filter=action]", "registerNode");
    await page.click("button:has-text('Filter')");
    await waitUntil(async () => (await page.locator("[data-testid=audit] tr[data-action]:not([data-action=registerNode])").count()) === 0 || undefined, 10_000, "only registerNode rows");
    const targets = await page.locator("[data-testid=audit] [data-testid=audit-target]").allTextContents();
    assert.ok(targets.includes("node:site-new"), `targets ${targets}`);
    const outcomes = await page.locator("[data-testid=audit] tr[data-action=registerNode]").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-outcome")));
    assert.ok(outcomes.includes("OK") && outcomes.includes("FAILED"), `the accepted and the refused registration: ${outcomes}`);
    await browser.screenshot(page, "dashboard/admin-audit");
    assert.equal(problems, []);
  } finally {
    await page.close();
  }
});

test("accounting shows the figures of a workflow that ran, in totals, charts and table, and its CSV download parses", async () => {
  const submitted = await gqlOk(env.orchestrator.url, SUBMIT, {
    input: { name: "accounted", tasks: [1, 2, 3].map((i) => ({ key: `t${i}`, tool: "echo@1.0.0", nodes: ["site-a"], params: { value: `v${i}` } })) },
  });
  const workflow = await finishedWorkflow(env.orchestrator.url, submitted.submitWorkflow.id, 60_000);
  assert.is(workflow.state, "SUCCEEDED");
  const api = await gqlOk(env.orchestrator.url, `{ accounting(groupBy: [DAY, NODE, TOOL, USER]) { day node tool user runs succeeded wallMs } }`);
  const expected = api.accounting as { day: string; node: string; tool: string; user: string; runs: number; succeeded: number; wallMs: number }[];
  const echo = expected.find((r) => r.tool === "echo@1.0.0" && r.node === "site-a");
  assert.ok(echo && echo.runs >= 3, JSON.stringify(expected));
  const { page, problems } = await adminPage("#/accounting");
  try {
    const row = page.locator(`[data-testid=accounting-table] tr[data-node=site-a][data-tool='echo@1.0.0']`);
    await row.waitFor();
    assert.is((await row.locator("[data-col=runs]").textContent())?.trim(), String(echo.runs));
    assert.is((await row.locator("[data-col=succeeded]").textContent())?.trim(), String(echo.succeeded));
    const totalRuns = expected.reduce((sum, r) => sum + r.runs, 0);
    assert.is((await page.locator("[data-total=Runs]").textContent())?.trim(), String(totalRuns));
    assert.ok((await page.locator("[data-testid=runs-per-day] .recharts-bar-rectangle").count()) > 0, "the daily chart has bars");
    assert.ok((await page.locator("[data-testid=time-by] .recharts-bar-rectangle").count()) > 0, "the by-node chart has bars");
    await browser.screenshot(page, "dashboard/accounting");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=export-csv]")]);
    assert.match(download.suggestedFilename(), /^fem-accounting-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = await readFile((await download.path())!, "utf8");
    const [header, ...lines] = csv.trimEnd().split("\r\n").map((line) => line.split(","));
    assert.equal(header.slice(0, 6), ["day", "node", "tool", "user", "runs", "succeeded"]);
    assert.is(lines.length, expected.length);
    const csvEcho = lines.find((l) => l[1] === "site-a" && l[2] === "echo@1.0.0");
    assert.ok(csvEcho, csv);
    assert.equal([csvEcho[0], csvEcho[3], Number(csvEcho[4]), Number(csvEcho[8])], [echo.day, echo.user, echo.runs, echo.wallMs]);
    // Live: runs that end while the page is open are counted without a reload (accountingUpdated).
    const more = await gqlOk(env.orchestrator.url, SUBMIT, { input: { name: "accounted later", tasks: [4, 5].map((i) => ({ key: `t${i}`, tool: "echo@1.0.0", nodes: ["site-a"], params: { value: `v${i}` } })) } });
    await finishedWorkflow(env.orchestrator.url, more.submitWorkflow.id, 60_000);
    await page.locator("[data-total=Runs]", { hasText: new RegExp(`^${totalRuns + 2}$`) }).waitFor({ timeout: 15_000 });
    await row.locator("[data-col=runs]", { hasText: new RegExp(`^${echo.runs + 2}$`) }).waitFor({ timeout: 5_000 });
    // A period with nothing in it says so.
    await page.getByLabel("First day").fill("2020-01-01");
    await page.getByLabel("Last day").fill("2020-01-31");
    await page.locator("[data-testid=no-usage]").waitFor();
    assert.equal(problems, [], "no console error: the charts keep to the CSP");
  } finally {
    await page.close();
  }
});

test("a project's OWNER sees only Projects under Admin and manages its members; a refusal shows the server's message", async () => {
  await gqlOk(env.orchestrator.url, `mutation($s: String!) { addProjectMember(project: "test", subject: $s, role: OWNER) { subject } }`, { s: OWNER });
  const { token } = await createApiToken(env.orchestrator.orm.em.fork(), { name: "owner", ownerSubject: OWNER, roles: [], expiresAt: null });
  const page = await browser.newPage();
  const problems = watchProblems(page);
  const roleOf = async (subject: string) =>
    ((await gqlOk(env.orchestrator.url, `{ project(id: "test") { members { subject role } } }`)).project.members as { subject: string; role: string }[]).find((m) => m.subject === subject)?.role;
  try {
    await openSignedIn(page, origin, token, OWNER, "#/workflows");
    await page.click("[data-testid=admin-link]");
    const card = page.locator("article[data-project=test]");
    await card.waitFor();
    assert.equal(await page.locator(".subnav a").allTextContents(), ["Projects"]);
    assert.is(await page.locator("text=New project").count(), 0, "creating projects is for ADMIN");
    assert.is(await card.locator("button", { hasText: "Add node" }).count(), 0, "assigning nodes is for ADMIN");
    await card.getByLabel("Subject").fill("new-member");
    await card.locator("form select").selectOption("VIEWER");
    await card.locator("button", { hasText: "Add member" }).click();
    await card.locator("tr[data-member=new-member]").waitFor();
    assert.is(await roleOf("new-member"), "VIEWER");
    await card.getByLabel("Role of new-member").selectOption("RESEARCHER");
    await waitUntil(async () => (await roleOf("new-member")) === "RESEARCHER" || undefined, 10_000, "the role changed");
    const refused = await gql(env.orchestrator.url, `mutation { addProjectMember(project: "test", subject: "new-member", role: VIEWER) { subject } }`);
    await card.getByLabel("Subject").fill("new-member");
    await card.locator("button", { hasText: "Add member" }).click();
    assert.is((await card.locator("[data-testid=action-error]").textContent())?.trim(), refused.errors?.[0]?.message);
    await browser.screenshot(page, "dashboard/owner-projects");
    await card.getByRole("button", { name: "Remove new-member" }).click();
    await card.locator("tr[data-member=new-member]").waitFor({ state: "detached" });
    assert.is(await roleOf("new-member"), undefined);
    await page.evaluate(`window.location.hash = '#/admin/dead-letters'`);
    await page.locator("[data-testid=not-allowed]", { hasText: "Dead letters" }).waitFor();
    assert.equal(problems, []);
  } finally {
    await page.close();
  }
});

test("an admin sees the dead letters page (none here) and every admin section in its menu", async () => {
  const { page, problems } = await adminPage("#/admin/dead-letters");
  try {
    await page.locator("[data-testid=no-dead-letters]").waitFor();
    assert.equal(await page.locator(".subnav a").allTextContents(), ["Register a node", "Tools", "Projects", "Audit log", "Dead letters"]);
    assert.equal(problems, []);
  } finally {
    await page.close();
  }
});

test("a RESEARCHER sees no admin links, and an admin page opened by its address offers no action", async () => {
  await gqlOk(env.orchestrator.url, `mutation($s: String!) { addProjectMember(project: "test", subject: $s, role: RESEARCHER) { subject } }`, { s: RESEARCHER });
  const { token } = await createApiToken(env.orchestrator.orm.em.fork(), { name: "researcher", ownerSubject: RESEARCHER, roles: [], expiresAt: null });
  const page = await browser.newPage();
  const problems = watchProblems(page);
  try {
    await openSignedIn(page, origin, token, RESEARCHER, "#/accounting");
    await page.locator("[data-testid=totals]").waitFor();
    const links = await page.locator("header nav a").allTextContents();
    assert.equal(links, ["Workflows", "Nodes", "Accounting", "API tokens"]);
    assert.is(await page.locator("[data-testid=admin-link]").count(), 0);
    await browser.screenshot(page, "dashboard/researcher-accounting");
    await page.evaluate(`window.location.hash = '#/admin/nodes'`);
    await page.locator("[data-testid=not-allowed]").waitFor();
    assert.is(await page.locator("[data-testid=node-id]").count(), 0, "no registration form");
    await page.evaluate(`window.location.hash = '#/admin/audit'`);
    await page.locator("[data-testid=not-allowed]", { hasText: "Audit log" }).waitFor();
    assert.is(await page.locator("[data-testid=audit]").count(), 0);
    assert.equal(problems, []);
  } finally {
    await page.close();
  }
});

test.run();

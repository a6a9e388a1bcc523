/** The `fem` commands and their options, wired to their implementations (commander). */
import { Command, InvalidArgumentError, Option } from "commander";
import { accounting } from "./commands/accounting.js";
import { logs } from "./commands/logs.js";
import { downloadOutputs, listOutputs } from "./commands/outputs.js";
import { listNodes, registerNode, removeNode, setAdminState } from "./commands/nodes.js";
import { login, logout } from "./commands/session.js";
import { listTools, registerTool } from "./commands/tools.js";
import { cancel, retry, status, submit } from "./commands/workflows.js";
import type { CommandContext } from "./context.js";
import { CliError } from "./errors.js";

function nonNegativeInt(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError("expected a non-negative integer");
  return Number(text);
}

function positiveInt(text: string): number {
  const n = nonNegativeInt(text);
  if (n < 1) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const JSON_HELP = "print JSON for scripts";

export function buildProgram(ctx: CommandContext, version: string): Command {
  const program = new Command("fem")
    .description("The FEM orchestrator from a terminal. FEM_URL and FEM_TOKEN override what fem login stored.")
    .version(version)
    .showHelpAfterError("(fem --help lists the commands)")
    // Set before the subcommands are added, which copy these settings: errors go through main's catch.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`fem: ${text.replace(/^error: /, "")}`) });

  program
    .command("login")
    .description("store the orchestrator's URL and your token (checked first) in ~/.config/fem/config.json, mode 0600")
    .requiredOption("--url <url>", "the orchestrator, e.g. https://fem.example.org (/graphql is added)")
    .option("--token-file <file>", "read the token from this file; else from standard input, or a hidden prompt on a terminal")
    .addOption(new Option("--token <token>").hideHelp())
    .action((options: { url: string; tokenFile?: string; token?: string }) => {
      if (options.token !== undefined) {
        throw CliError.usage("fem login takes no --token: on the command line a token is readable by every process (/proc/<pid>/cmdline) and kept in shell history; use --token-file FILE, or pipe it in");
      }
      return login(ctx, options);
    });
  program.command("logout").description("forget the stored URL and token").action(() => logout(ctx));

  program
    .command("nodes")
    .description("list nodes: connectivity, admin state, runs held of capacity, last heartbeat")
    .option("--watch", "keep the list live (nodeUpdated) until Ctrl-C")
    .option("--json", JSON_HELP)
    .action((options: { watch?: boolean; json?: boolean }) => listNodes(ctx, options));

  const node = program.command("node").description("register a node, change its admin state, or remove it");
  node
    .command("register <id>")
    .description("register a node; prints its credential once, with the agent's start command")
    .option("--name <name>", "a name for people")
    .option("--capacity <n>", "most runs at once (default 2)", positiveInt)
    .option("--label <key=value>", "a label tasks can target (repeatable)", collect)
    .option("--json", JSON_HELP)
    .action((id: string, options) => registerNode(ctx, id, options));
  for (const [action, text] of [
    ["drain", "take no new work; what runs finishes"],
    ["disable", "stop its runs and cut it off the broker"],
    ["enable", "take work again (ACTIVE)"],
  ] as const) {
    node
      .command(`${action} <id>`)
      .description(text)
      .option("--json", JSON_HELP)
      .action((id: string, options: { json?: boolean }) => setAdminState(ctx, action, id, options));
  }
  node
    .command("remove <id>")
    .description("remove a DISABLED node whose runs have all ended: deletes its broker user and queues, keeps its history")
    .option("--json", JSON_HELP)
    .action((id: string, options: { json?: boolean }) => removeNode(ctx, id, options));

  const tools = program.command("tools").description("register and list tools");
  tools
    .command("register <file>")
    .description("register a tool version from a YAML or JSON file (schema/tool.schema.json)")
    .option("--json", JSON_HELP)
    .action((file: string, options: { json?: boolean }) => registerTool(ctx, file, options));
  tools
    .command("ls")
    .description("list tools")
    .option("--json", JSON_HELP)
    .action((options: { json?: boolean }) => listTools(ctx, options));

  program
    .command("submit <file>")
    .description("submit a workflow from a YAML or JSON file (schema/workflow.schema.json)")
    .option("--follow", "show run states and log lines live; exit 0 only if the workflow succeeds")
    .option("--project <project>", "the project (id or name), over the file's")
    .option("--json", JSON_HELP)
    .action((file: string, options) => submit(ctx, file, options));
  program
    .command("status <workflow>")
    .description("a workflow's state and its runs")
    .option("--json", JSON_HELP)
    .action((id: string, options: { json?: boolean }) => status(ctx, id, options));
  program
    .command("cancel <workflow>")
    .description("cancel a workflow's unfinished runs")
    .option("--json", JSON_HELP)
    .action((id: string, options: { json?: boolean }) => cancel(ctx, id, options));
  program
    .command("retry <task>")
    .description("run a finished task again, then what depends on it")
    .option("--json", JSON_HELP)
    .action((id: string, options: { json?: boolean }) => retry(ctx, id, options));
  program
    .command("logs <run-or-task>")
    .description("a run's log lines as <seq> <STREAM> <text>; a task's, of all its runs, with each run's node in front")
    .option("--follow", "then live lines until the run (task) has ended; exit 0 only if it succeeded")
    .option("--after-seq <n>", "only lines after this seq (to resume; a run only)", nonNegativeInt)
    .option("--json", "print JSON lines")
    .action((run: string, options) => logs(ctx, run, options));
  const outputs = program.command("outputs").description("list and download the output files of runs");
  outputs
    .command("ls <run-or-task>")
    .description("the output files of a run, or of every run of a task, with their release state")
    .option("--json", JSON_HELP)
    .action((id: string, options: { json?: boolean }) => listOutputs(ctx, id, options));
  outputs
    .command("download <artifact-or-run>")
    .description("save an AVAILABLE output (or all of a run's) checked against its sha256; resumes an interrupted download")
    .option("--out <dir>", "where to save them, under their path in the run (default: the current directory)")
    .option("--json", JSON_HELP)
    .action((id: string, options: { out?: string; json?: boolean }) => downloadOutputs(ctx, id, options));
  program
    .command("accounting")
    .description("usage of finished runs, summed by node, tool, user and/or day")
    .requiredOption("--by <dimensions>", "comma-separated: node,tool,user,day")
    .option("--from <time>", "runs finished at or after (YYYY-MM-DD is midnight UTC)")
    .option("--to <time>", "runs finished before")
    .option("--workflow <id>", "only this workflow's runs")
    .addOption(new Option("--csv", "print CSV").conflicts("json"))
    .option("--json", JSON_HELP)
    .action((options) => accounting(ctx, options));
  return program;
}

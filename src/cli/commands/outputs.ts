/**
 * `fem outputs ls RUN|TASK` lists the output files of a run (or of every run of a task) with their
 * release state; `fem outputs download ARTIFACT|RUN [--out DIR]` saves the AVAILABLE ones, checked
 * against their sha256 and resumed when a previous download was interrupted (see download.ts).
 */
import { isAbsolute, join, relative, resolve } from "node:path";
import type { Api } from "../api.js";
import type { CommandContext } from "../context.js";
import { downloadArtifact, sha256FromDigestHeader, type Downloaded, type DownloadRequest } from "../download.js";
import { CliError } from "../errors.js";
import { firstFound } from "../lookup.js";
import { RUN_OUTPUTS, TASK_OUTPUTS, type ArtifactView, type RunOutputs } from "../operations.js";
import { bytes, colourState, table } from "../render.js";

interface Listed extends ArtifactView {
  runId: string;
  attempt: number;
  node: string;
}

async function runOutputs(api: Api, id: string): Promise<RunOutputs> {
  return (await api.request<{ run: RunOutputs }>(RUN_OUTPUTS, { id })).run;
}

function listed(run: RunOutputs): Listed[] {
  return run.outputs.map((a) => ({ ...a, runId: run.id, attempt: run.attempt, node: run.node.id }));
}

export async function listOutputs(ctx: CommandContext, id: string, options: { json?: boolean }): Promise<void> {
  const api = await ctx.api();
  const artifacts = await firstFound(id, [
    ["run", async () => listed(await runOutputs(api, id))],
    ["task", async () => (await api.request<{ task: { runs: RunOutputs[] } }>(TASK_OUTPUTS, { id })).task.runs.flatMap(listed)],
  ]);
  if (options.json) return ctx.out.json(artifacts);
  if (artifacts.length === 0) return ctx.out.line("no outputs");
  ctx.out.line(
    table(
      ["ARTIFACT", "NODE", "PATH", "SIZE", "SHA256", "STATE"],
      artifacts.map((a) => [a.id, a.attempt > 1 ? `${a.node}#${a.attempt}` : a.node, a.path, bytes(a.sizeBytes), a.sha256?.slice(0, 16), colourState(a.state)]),
    ),
  );
}

/** `dir/path`, refusing a path that would leave `dir`. */
function inside(dir: string, path: string): string {
  const file = resolve(dir, path);
  const rel = relative(resolve(dir), file);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) throw new CliError(`the output path ${JSON.stringify(path)} would be written outside ${dir}; not saved`);
  return file;
}

/** What to fetch for a run's id (its AVAILABLE outputs), else for an artifact's id (named by the server). */
async function requestsFor(ctx: CommandContext, api: Api, id: string, outDir: string): Promise<DownloadRequest[]> {
  return firstFound(id, [
    [
      "run",
      async () => {
        const run = await runOutputs(api, id);
        const waiting = run.outputs.filter((a) => !a.downloadUrl);
        for (const a of waiting) ctx.out.note(`skipped ${a.path}: ${a.state}${a.reason ? ` (${a.reason})` : ""}, not AVAILABLE`);
        if (run.outputs.length > 0 && waiting.length === run.outputs.length) throw new CliError(`none of the ${run.outputs.length} outputs of run ${id} is AVAILABLE yet`);
        return run.outputs
          .filter((a) => a.downloadUrl)
          .map((a) => ({ path: a.downloadUrl!, file: inside(outDir, a.path), sha256: a.sha256, label: a.path }));
      },
    ],
    [
      "artifact",
      async () => {
        const path = `/artifacts/${encodeURIComponent(id)}`;
        const head = await api.file(path, { method: "HEAD", signal: AbortSignal.timeout(60_000) });
        const name = /filename="([^"]+)"/.exec(head.headers.get("content-disposition") ?? "")?.[1] ?? id;
        return [{ path, file: inside(outDir, name), sha256: sha256FromDigestHeader(head.headers.get("repr-digest")), label: name }];
      },
    ],
  ]);
}

export async function downloadOutputs(ctx: CommandContext, id: string, options: { out?: string; json?: boolean }): Promise<void> {
  const api = await ctx.api();
  const outDir = options.out ?? ".";
  const requests = await requestsFor(ctx, api, id, outDir);
  if (requests.length === 0) return options.json ? ctx.out.json([]) : ctx.out.note(`run ${id} has no outputs`);
  const done: Downloaded[] = [];
  for (const request of requests) {
    const saved = await downloadArtifact(api, request);
    done.push(saved);
    if (!options.json) {
      const resumed = saved.resumedFromBytes > 0 ? `, resumed at byte ${saved.resumedFromBytes}` : "";
      ctx.out.line(`saved ${join(outDir, relative(resolve(outDir), saved.file))} (${bytes(saved.sizeBytes)}${resumed}; sha256 ${saved.sha256} verified)`);
    }
  }
  if (options.json) ctx.out.json(done);
}

/**
 * The argv that starts one `sandbox` run (bubblewrap, setpriv, prlimit), built from the run's spec
 * alone so that it can be read and tested without starting anything; and the programs it needs.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { datasetEnv, DATASETS_IN_SANDBOX } from "./datasets.js";
import type { RunDataset, RunSpec } from "./launcher.js";
import type { RunCgroup } from "./cgroups.js";

const MIB = 1024 * 1024;
/** Where the run's directory appears inside the sandbox (its working directory). */
export const RUN_DIR_IN_SANDBOX = "/sandbox";
/**
 * Writes its own pid to each `cgroup.procs` file named before `--`, then executes the rest: the run
 * is in its cgroups before bubblewrap forks. A constant: data reaches it only as arguments.
 */
const ENTER_CGROUPS_SCRIPT = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';
/** Top-level names a merged-/usr system links into /usr, recreated inside the sandbox as they are on the node. */
const ROOT_LINKS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/** Programs the launcher runs: found at start, all under /usr so that they exist inside the sandbox too. */
export interface SandboxPrograms {
  bwrap: string;
  setpriv: string;
  prlimit: string;
  sh: string;
  env: string;
}

export interface SandboxArgvInput {
  programs: SandboxPrograms;
  settings: { runAsUid: number; runAsGid: number };
  dropPrivileges: boolean;
  rootArgs: readonly string[];
  spec: RunSpec;
  /** The tool's executable on the node (absolute). */
  executable: string;
  cgroup: Pick<RunCgroup, "procsFiles" | "controllers"> | null;
}

/**
 * The whole argv that starts one run: [enter its cgroups] bwrap … -- [setpriv …] [prlimit …] tool
 * args. The run's datasets are bound read-only at `/data/<name>` (and named in `FEM_DATASET_<NAME>`);
 * no other dataset of the node is bound.
 */
export function sandboxArgv(input: SandboxArgvInput): string[] {
  const { programs, spec, executable } = input;
  const enter = input.cgroup ? [programs.sh, "-c", ENTER_CGROUPS_SCRIPT, "fem-enter-cgroups", ...input.cgroup.procsFiles, "--"] : [];
  // As root, no user namespace: the uid is dropped by setpriv after bubblewrap made the mounts, so
  // the run is an unprivileged uid on the node too (bwrap --uid as root would stay root outside).
  const namespaces = input.dropPrivileges
    ? ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    : ["--unshare-all"];
  const inside = executableInSandbox(executable, spec.runDir);
  const toolMount = inside.mounted ? [] : ["--perms", "0755", "--dir", path.dirname(executable), "--ro-bind", executable, executable];
  // bubblewrap would create /data for the binds with mode 0700, closed to a run under FEM_RUN_AS_UID.
  const dataDir = spec.datasets.length > 0 ? ["--perms", "0755", "--dir", DATASETS_IN_SANDBOX] : [];
  const datasets = [...dataDir, ...spec.datasets.flatMap((d) => ["--ro-bind", d.path, datasetInSandbox(d)])];
  const runEnv = { ...spec.env, ...datasetEnv(spec.datasets, datasetInSandbox) };
  const env = Object.entries(runEnv).flatMap(([name, value]) => ["--setenv", name, value]);
  const drop = input.dropPrivileges
    ? [programs.setpriv, "--reuid", String(input.settings.runAsUid), "--regid", String(input.settings.runAsGid), "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
    : [];
  const rlimits = prlimitArgs(spec, input.cgroup);
  // bubblewrap always sets PWD; the run gets only its tool's environment.
  const unsetPwd = "PWD" in runEnv ? [] : [programs.env, "-u", "PWD", "--"];
  return [
    ...enter,
    programs.bwrap,
    ...namespaces,
    "--die-with-parent",
    "--new-session",
    "--clearenv",
    "--ro-bind", "/usr", "/usr",
    ...input.rootArgs,
    "--proc", "/proc",
    "--dev", "/dev",
    "--perms", "1777", "--tmpfs", "/tmp",
    "--bind", spec.runDir, RUN_DIR_IN_SANDBOX,
    ...toolMount,
    ...datasets,
    "--chdir", RUN_DIR_IN_SANDBOX,
    ...env,
    "--",
    ...drop,
    ...(rlimits.length > 0 ? [programs.prlimit, ...rlimits, "--"] : []),
    ...unsetPwd,
    inside.path,
    ...spec.argv.slice(1),
  ];
}

/** Where a dataset appears inside the sandbox: `/data/<name>`, read-only. */
function datasetInSandbox(dataset: RunDataset): string {
  return path.posix.join(DATASETS_IN_SANDBOX, dataset.name);
}

/** rlimits for what no cgroup enforces: address space for memory, process count for pids; file size and CPU time always. */
function prlimitArgs(spec: RunSpec, cgroup: Pick<RunCgroup, "controllers"> | null): string[] {
  const { memoryMiB, pidsMax, diskMiB, cpuSeconds } = spec.limits;
  const inCgroup = (controller: "memory" | "pids") => cgroup?.controllers.includes(controller) ?? false;
  const args: string[] = [];
  if (memoryMiB !== null && !inCgroup("memory")) args.push(`--as=${memoryMiB * MIB}`);
  // RLIMIT_NPROC counts every process of the uid, across runs: only a fallback.
  if (pidsMax !== null && !inCgroup("pids")) args.push(`--nproc=${pidsMax}`);
  if (diskMiB !== null) args.push(`--fsize=${diskMiB * MIB}`);
  if (cpuSeconds !== null) args.push(`--cpu=${cpuSeconds}`);
  return args;
}

function executableInSandbox(executable: string, runDir: string): { path: string; mounted: boolean } {
  if (executable.startsWith(runDir + path.sep)) return { path: path.join(RUN_DIR_IN_SANDBOX, path.relative(runDir, executable)), mounted: true };
  if (executable.startsWith("/usr/") || ROOT_LINKS.some((link) => executable.startsWith(link + "/"))) return { path: executable, mounted: true };
  return { path: executable, mounted: false };
}

/** Finds the programs under /usr; throws an `Error` saying what to install when one is missing. */
export async function findPrograms(searchPath: readonly string[]): Promise<SandboxPrograms> {
  const dirs = [...new Set(["/usr/bin", "/usr/sbin", ...searchPath.filter((dir) => dir.startsWith("/usr/"))])];
  const find = async (name: string, install: string) => {
    for (const dir of dirs) {
      const file = path.join(dir, name);
      if (await fs.access(file, fs.constants.X_OK).then(() => true, () => false)) return file;
    }
    throw new Error(`the sandbox launcher needs ${name} under /usr (${install})`);
  };
  return {
    bwrap: await find("bwrap", "apt-get install bubblewrap"),
    setpriv: await find("setpriv", "apt-get install util-linux"),
    prlimit: await find("prlimit", "apt-get install util-linux"),
    sh: await find("sh", "a POSIX shell"),
    env: await find("env", "apt-get install coreutils"),
  };
}

/** bwrap arguments recreating /bin, /lib… as they are on the node (links into /usr, or directories). */
export async function rootLinkArgs(): Promise<string[]> {
  const args: string[] = [];
  for (const name of ROOT_LINKS) {
    const stat = await fs.lstat(name).catch(() => null);
    if (stat?.isSymbolicLink()) args.push("--symlink", await fs.readlink(name), name);
    else if (stat?.isDirectory()) args.push("--ro-bind", name, name);
  }
  return args;
}


/**
 * The argv of container runs, built from the run's spec alone so that it can be read and tested
 * without a runtime: one builder for podman and docker, one with the same options for
 * singularity/apptainer; and the rules both rely on (images pinned by digest, an environment file).
 */
import { DATASETS_IN_SANDBOX, datasetEnv } from "./datasets.js";
import type { RunDataset, RunSpec } from "./launcher.js";
import { LaunchError } from "./launcher.js";
import { RUN_DIR_IN_SANDBOX } from "./sandbox-argv.js";

export type OciRuntime = "podman" | "docker";
export type ApptainerRuntime = "singularity" | "apptainer";

const MIB = 1024 * 1024;
/** Open files of a container run. Explicit: podman's default (1048576) is above these hosts' hard limit and fails with "error setting rlimit". */
export const CONTAINER_NOFILE = 4096;
/**
 * RLIMIT_NPROC of a container run. Explicit for the same reason; generous because it counts every
 * process of the uid on the host (all runs share it): the run's own limit is `--pids-limit`. runc
 * refuses values above 32768 on these hosts ("error setting rlimit type 6").
 */
export const CONTAINER_NPROC = 16384;
/** `name@sha256:<64 hex>`; the name may carry a registry, a path and a tag, but no scheme. */
const PINNED_IMAGE = /^(?!.*\/\/)[A-Za-z0-9][A-Za-z0-9._/:-]*@sha256:[0-9a-f]{64}$/;
/** Names an environment file can carry (and a shell can set). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The name of a run's container: what `kill`, `rm -f` and the agent's restart find it by. */
export function containerName(runId: string, attempt: number): string {
  return `fem-${runId}-${attempt}`;
}

/**
 * Why a container launcher refuses `image`, or null: only a reference pinned by digest runs, since
 * a tag can be moved on the node after the operator pinned the tool (the digest is part of the tool's).
 */
export function imageProblem(image: string | null, launcher: string): string | null {
  if (image === null || image === "") return `the ${launcher} launcher needs the tool's image, and the tool names none`;
  if (PINNED_IMAGE.test(image)) return null;
  return `image "${image}" is not pinned by digest: the ${launcher} launcher runs only name@sha256:<digest> references (podman image inspect --format '{{index .RepoDigests 0}}' <image> prints one)`;
}

/**
 * The run's environment as an env file: `NAME=value` lines for podman and docker, single-quoted
 * shell assignments for singularity/apptainer (which source it). Throws `LaunchError` for a name
 * or value such a file cannot carry.
 */
export function envFileText(env: Readonly<Record<string, string>>, flavour: "oci" | "shell"): string {
  const lines = Object.entries(env).map(([name, value]) => {
    if (!ENV_NAME.test(name)) throw new LaunchError(`environment variable name "${name}" cannot be passed to a container (letters, digits and _ only)`);
    if (flavour === "shell") return `${name}='${value.replaceAll("'", `'\\''`)}'`;
    if (/[\n\r\0]/.test(value)) throw new LaunchError(`environment variable ${name} holds a line break or NUL, which a container's env file cannot carry`);
    return `${name}=${value}`;
  });
  return lines.map((line) => `${line}\n`).join("");
}

export interface OciArgvInput {
  runtime: OciRuntime;
  /** Options before `run` (podman's `--runtime`, `--cgroup-manager`). */
  globalArgs: readonly string[];
  spec: RunSpec;
  /** A reference pinned by digest (see `imageProblem`). */
  image: string;
  user: { uid: number; gid: number };
  /** File holding the run's environment (`envFileText`), outside the run's directory. */
  envFile: string;
  /**
   * podman: the run's own memory cgroup (as a path from its hierarchy's root), which holds the
   * memory limit in place of `--memory`, so that its OOM counter outlives the container's cgroup.
   */
  cgroupParent: string | null;
}

/** The run's environment inside a container: the tool's, plus where each dataset it asked for is. */
export function containerEnv(spec: RunSpec): Record<string, string> {
  return { ...spec.env, ...datasetEnv(spec.datasets, datasetInContainer) };
}

/** Where a run finds a dataset it asked for inside its container (as in the sandbox launcher). */
export function datasetInContainer(dataset: RunDataset): string {
  return `${DATASETS_IN_SANDBOX}/${dataset.name}`;
}

/** `hostPath` when a mount option can name it (none of `forbidden`, no line break); a launch error otherwise. */
function mountable(hostPath: string, forbidden: string): string {
  if ([...forbidden, "\n"].some((c) => hostPath.includes(c))) throw new LaunchError(`the dataset path ${hostPath} holds a character a container mount cannot name (${JSON.stringify(forbidden)} or a line break)`);
  return hostPath;
}

/** The arguments after `podman` or `docker`: `run … <image> <argv[1..]>`, with argv[0] as the entrypoint. */
export function ociRunArgv(input: OciArgvInput): string[] {
  const { spec, runtime } = input;
  const [entrypoint = "", ...args] = spec.argv;
  // podman reads an entrypoint starting with "[" as a JSON array.
  if (entrypoint === "" || entrypoint.startsWith("[")) throw new LaunchError(`cannot start "${entrypoint}" in a container: argv[0] must be an executable's path in the image`);
  if (/[,\n]/.test(spec.runDir)) throw new LaunchError(`the run's directory ${spec.runDir} holds a comma or a line break, which a container mount cannot name`);
  const { memoryMiB, pidsMax, diskMiB, cpuSeconds, cpus } = spec.limits;
  const limits: string[] = [];
  if (input.cgroupParent !== null) limits.push("--cgroup-parent", input.cgroupParent);
  // On the container's own cgroup even below a parent: a limit on the parent alone also bounds
  // podman's monitor (conmon, in `<parent>/conmon`), which the OOM killer then sometimes picks.
  if (memoryMiB !== null) limits.push("--memory", `${memoryMiB}m`, "--memory-swap", `${memoryMiB}m`);
  if (pidsMax !== null) limits.push("--pids-limit", String(pidsMax));
  if (cpus !== null) limits.push("--cpus", String(cpus));
  if (cpuSeconds !== null) limits.push("--ulimit", `cpu=${cpuSeconds}:${cpuSeconds}`);
  if (diskMiB !== null) limits.push("--ulimit", `fsize=${diskMiB * MIB}:${diskMiB * MIB}`);
  const tmpfs = diskMiB === null ? "/tmp" : `/tmp:size=${diskMiB}m`;
  return [
    ...input.globalArgs,
    "run",
    "--name", containerName(spec.runId, spec.attempt),
    "--pull", "never",
    "--network", "none",
    "--read-only",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--user", `${input.user.uid}:${input.user.gid}`,
    ...limits,
    "--ulimit", `nofile=${CONTAINER_NOFILE}:${CONTAINER_NOFILE}`,
    "--ulimit", `nproc=${CONTAINER_NPROC}:${CONTAINER_NPROC}`,
    "--mount", `type=bind,source=${spec.runDir},target=${RUN_DIR_IN_SANDBOX}`,
    // The datasets the run asked for, read-only at /data/<name>; none of the node's others.
    ...spec.datasets.flatMap((d) => ["--mount", `type=bind,source=${mountable(d.path, ",")},target=${datasetInContainer(d)},readonly`]),
    "--workdir", RUN_DIR_IN_SANDBOX,
    "--tmpfs", tmpfs,
    // Without it podman adds PATH, TERM, container and the image's variables (docker has no such option).
    ...(runtime === "podman" ? ["--unsetenv-all"] : []),
    "--env-file", input.envFile,
    "--entrypoint", entrypoint,
    input.image,
    ...args,
  ];
}

export interface ApptainerArgvInput {
  spec: RunSpec;
  image: string;
  user: { uid: number; gid: number };
  /** True when the agent is root: the run then executes as `user` (`--security uid:…,gid:…`). */
  dropPrivileges: boolean;
  envFile: string;
}

/**
 * The arguments after `singularity` or `apptainer`: `exec` with the same isolation as the OCI
 * runtimes (no network, no home, clean environment, read-only image, the run's directory at the
 * same path, memory/pids/cpus limits). Only tested as argv: neither is packaged on Debian.
 */
export function apptainerExecArgv(input: ApptainerArgvInput): string[] {
  const { spec } = input;
  if (spec.argv[0] === undefined || spec.argv[0] === "") throw new LaunchError("argv[0] is empty: no executable to start");
  if (/[,:\n]/.test(spec.runDir)) throw new LaunchError(`the run's directory ${spec.runDir} holds a comma, a colon or a line break, which a bind cannot name`);
  const { memoryMiB, pidsMax, cpus } = spec.limits;
  const limits: string[] = [];
  if (memoryMiB !== null) limits.push("--memory", `${memoryMiB}M`, "--memory-swap", `${memoryMiB}M`);
  if (pidsMax !== null) limits.push("--pids-limit", String(pidsMax));
  if (cpus !== null) limits.push("--cpus", String(cpus));
  return [
    "exec",
    "--containall",
    "--cleanenv",
    "--no-home",
    "--no-privs",
    "--net", "--network", "none",
    ...(input.dropPrivileges ? ["--security", `uid:${input.user.uid},gid:${input.user.gid}`] : []),
    ...limits,
    "--bind", `${spec.runDir}:${RUN_DIR_IN_SANDBOX}:rw`,
    ...spec.datasets.flatMap((d) => ["--bind", `${mountable(d.path, ",:")}:${datasetInContainer(d)}:ro`]),
    "--pwd", RUN_DIR_IN_SANDBOX,
    "--env-file", input.envFile,
    `docker://${input.image}`,
    ...spec.argv,
  ];
}

/**
 * Per-run memory and pids cgroups, where the agent may create them: cgroup v1 controllers or
 * cgroup v2, detected at start, plus the `cpu` controller (a CPU quota) where it is writable too.
 * A run's cgroup is a child of the agent's own, named `fem-<runId>-<attempt>`; where none is
 * writable the sandbox launcher falls back to `prlimit` (which has no CPU quota).
 */
import fs from "node:fs/promises";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { errorCode, toError } from "../shared/index.js";
import { killProcess } from "./launcher.js";

export type CgroupController = "memory" | "pids" | "cpu";

export interface CgroupLimits {
  memoryBytes: number | null;
  pidsMax: number | null;
  /** CPU quota in cores (0.5: half of one core's time per period). */
  cpus: number | null;
}

export interface RunCgroup {
  /** The controllers that limit this run. */
  controllers: CgroupController[];
  /** The `cgroup.procs` files a process writes its pid to, to enter the run's cgroups. */
  procsFiles: string[];
  /** The run's cgroup of `controller` as a path from its hierarchy's root (what `podman --cgroup-parent` takes), or null. */
  hierarchyPath(controller: CgroupController): string | null;
  /** Whether the kernel killed a process of the run for memory (the OOM killer inside the limit). */
  oomKilled(): Promise<boolean>;
  /** How often a fork failed at the pids limit. */
  pidsLimitHits(): Promise<number>;
  /** The memory high-water mark of the whole run, when the kernel keeps one. */
  peakMemoryBytes(): Promise<number | null>;
  /** Every process in the run's cgroups. */
  pids(): Promise<number[]>;
  /** SIGKILLs what is left and removes the cgroups (retrying while they empty); never throws. */
  remove(): Promise<void>;
}

export interface Cgroups {
  /** "v1", "v2" or "none", with the controllers this agent can use. */
  version: "v1" | "v2" | "none";
  controllers: CgroupController[];
  /** Creates the run's cgroups with `limits` (a null limit's controller is left out); throws when it cannot. */
  create(name: string, limits: CgroupLimits): Promise<RunCgroup | null>;
  /** Kills what is left in the cgroups called `name` (of a previous agent process) and removes them; never throws. */
  reclaim(name: string): Promise<void>;
  /** Where the cgroup `name` of `controller` is (or would be), as a path from its hierarchy's root; null without the controller. */
  hierarchyPath(controller: CgroupController, name: string): string | null;
}

const CONTROLLERS: CgroupController[] = ["memory", "pids"];
/** Used where writable, never required. */
const OPTIONAL_CONTROLLER: CgroupController = "cpu";
/** CFS period of a CPU quota. @default 100_000 // 100 ms */
const CPU_PERIOD_US = 100_000;
const MOUNTINFO = "/proc/self/mountinfo";
const SELF_CGROUP = "/proc/self/cgroup";

/** Finds the cgroup directories the agent may create children in, probing each by creating one. */
export async function detectCgroups(): Promise<Cgroups> {
  const [mountinfo, membership] = await Promise.all([fs.readFile(MOUNTINFO, "utf8").catch(() => ""), fs.readFile(SELF_CGROUP, "utf8").catch(() => "")]);
  const v1 = new Map<CgroupController, CgroupDir>();
  for (const controller of CONTROLLERS) {
    const dir = v1Dir(mountinfo, membership, controller);
    if (dir && (await probe(dir.dir, (probeDir) => writeLimit(probeDir, controller, 1, "v1")))) v1.set(controller, dir);
  }
  if (v1.size > 0) {
    const cpuDir = v1Dir(mountinfo, membership, OPTIONAL_CONTROLLER);
    if (cpuDir && (await probe(cpuDir.dir, (probeDir) => writeLimit(probeDir, OPTIONAL_CONTROLLER, 1, "v1")))) v1.set(OPTIONAL_CONTROLLER, cpuDir);
    return cgroupsAt("v1", (c) => v1.get(c) ?? null);
  }
  const v2 = await v2Dir(mountinfo, membership);
  if (v2 && (await enableV2Controllers(v2.dir)) && (await probe(v2.dir, (probeDir) => writeLimit(probeDir, "memory", 64 * 1024 * 1024, "v2")))) {
    const withCpu = (await enableV2Controller(v2.dir, OPTIONAL_CONTROLLER)) && (await probe(v2.dir, (probeDir) => writeLimit(probeDir, OPTIONAL_CONTROLLER, 1, "v2")));
    return cgroupsAt("v2", (c) => (c !== OPTIONAL_CONTROLLER || withCpu ? v2 : null));
  }
  return { version: "none", controllers: [], create: async () => null, reclaim: async () => undefined, hierarchyPath: () => null };
}

/** The limit `limits` sets through `controller`, or null. */
function limitOf(controller: CgroupController, limits: CgroupLimits): number | null {
  return controller === "memory" ? limits.memoryBytes : controller === "pids" ? limits.pidsMax : limits.cpus;
}

/** A directory the agent may create cgroups in, and the mount point of its hierarchy. */
interface CgroupDir {
  dir: string;
  mountPoint: string;
}

function cgroupsAt(version: "v1" | "v2", dirOfController: (controller: CgroupController) => CgroupDir | null): Cgroups {
  const dirOf = (controller: CgroupController) => dirOfController(controller)?.dir ?? null;
  const hierarchyPathOf = (controller: CgroupController, name: string) => {
    const at = dirOfController(controller);
    return at ? `/${path.relative(at.mountPoint, path.join(at.dir, name))}` : null;
  };
  const controllers = [...CONTROLLERS, OPTIONAL_CONTROLLER].filter((c) => dirOf(c) !== null);
  return {
    version,
    controllers,
    async create(name, limits) {
      const wanted = controllers.filter((c) => limitOf(c, limits) !== null);
      if (wanted.length === 0) return null;
      // v2 has one directory for every controller; v1 one per controller.
      const dirs = [...new Set(wanted.map((c) => path.join(dirOf(c)!, name)))];
      const byController = new Map(wanted.map((c) => [c, path.join(dirOf(c)!, name)]));
      const cgroup = runCgroup(version, dirs, byController, (c) => (byController.has(c) ? hierarchyPathOf(c, name) : null));
      try {
        for (const dir of dirs) await fs.mkdir(dir);
        for (const [controller, dir] of byController) {
          await writeLimit(dir, controller, limitOf(controller, limits)!, version);
        }
      } catch (err) {
        await cgroup.remove();
        throw new Error(`cannot create the run's cgroup ${name}: ${toError(err).message}`, { cause: err });
      }
      return cgroup;
    },
    async reclaim(name) {
      const byController = new Map(controllers.map((c) => [c, path.join(dirOf(c)!, name)]));
      const dirs = [...new Set(byController.values())];
      const present = await Promise.all(dirs.map((dir) => fs.access(dir).then(() => true, () => false)));
      if (present.some(Boolean)) await runCgroup(version, dirs, byController, () => null).remove();
    },
    hierarchyPath: hierarchyPathOf,
  };
}

function runCgroup(
  version: "v1" | "v2",
  dirs: string[],
  byController: Map<CgroupController, string>,
  hierarchyPath: (controller: CgroupController) => string | null,
): RunCgroup {
  const memoryDir = byController.get("memory");
  const pidsDir = byController.get("pids");
  const pids = async () => {
    const lists = await Promise.all(dirs.map((dir) => fs.readFile(path.join(dir, "cgroup.procs"), "utf8").catch(() => "")));
    return [...new Set(lists.flatMap((text) => text.split("\n").filter((line) => line !== "").map(Number)))];
  };
  return {
    controllers: [...byController.keys()],
    procsFiles: dirs.map((dir) => path.join(dir, "cgroup.procs")),
    hierarchyPath,
    async oomKilled() {
      if (!memoryDir) return false;
      const file = version === "v1" ? "memory.oom_control" : "memory.events";
      return (await readCounter(path.join(memoryDir, file), "oom_kill")) > 0;
    },
    async pidsLimitHits() {
      return pidsDir ? readCounter(path.join(pidsDir, "pids.events"), "max") : 0;
    },
    async peakMemoryBytes() {
      if (!memoryDir) return null;
      const text = await fs.readFile(path.join(memoryDir, version === "v1" ? "memory.max_usage_in_bytes" : "memory.peak"), "utf8").catch(() => null);
      const value = Number(text?.trim());
      return text !== null && Number.isFinite(value) ? value : null;
    },
    pids,
    async remove() {
      for (let attempt = 0; attempt < 50; attempt += 1) {
        for (const pid of await pids()) {
          try {
            killProcess(pid, "SIGKILL");
          } catch {
            // not ours to signal any more: removal below fails and is retried
          }
        }
        const left = await Promise.all(dirs.map((dir) => fs.rmdir(dir).then(() => false, (err: unknown) => errorCode(err) !== "ENOENT")));
        if (!left.some(Boolean)) return;
        await delay(100);
      }
    },
  };
}

/** The agent's own directory of a v1 controller: its mount point plus the agent's path below the mount's root. */
function v1Dir(mountinfo: string, membership: string, controller: CgroupController): CgroupDir | null {
  const mount = mountinfo
    .split("\n")
    .map(parseMountinfoLine)
    .find((m) => m?.fstype === "cgroup" && m.superOptions.split(",").includes(controller));
  const own = membership
    .split("\n")
    .map((line) => line.split(":"))
    .find((fields) => fields.length >= 3 && fields[1]!.split(",").includes(controller));
  if (!mount || !own) return null;
  return { dir: path.join(mount.mountPoint, path.relative(mount.root, own.slice(2).join(":"))), mountPoint: mount.mountPoint };
}

async function v2Dir(mountinfo: string, membership: string): Promise<CgroupDir | null> {
  const mount = mountinfo
    .split("\n")
    .map(parseMountinfoLine)
    .find((m) => m?.fstype === "cgroup2");
  const own = membership.split("\n").find((line) => line.startsWith("0::"));
  if (!mount || own === undefined) return null;
  const dir = path.join(mount.mountPoint, path.relative(mount.root, own.slice(3)));
  const available = await fs.readFile(path.join(dir, "cgroup.controllers"), "utf8").catch(() => "");
  return CONTROLLERS.every((c) => available.split(/\s+/).includes(c)) ? { dir, mountPoint: mount.mountPoint } : null;
}

/** Lets the agent's children use `controller` where the agent's cgroup has it (v2), best effort. */
async function enableV2Controller(dir: string, controller: CgroupController): Promise<boolean> {
  const available = await fs.readFile(path.join(dir, "cgroup.controllers"), "utf8").catch(() => "");
  if (!available.split(/\s+/).includes(controller)) return false;
  const enabled = await fs.readFile(path.join(dir, "cgroup.subtree_control"), "utf8").catch(() => "");
  if (enabled.split(/\s+/).includes(controller)) return true;
  return fs.writeFile(path.join(dir, "cgroup.subtree_control"), `+${controller}`).then(
    () => true,
    () => false,
  );
}

/** Lets the agent's children use memory and pids (v2 delegates controllers explicitly). */
async function enableV2Controllers(dir: string): Promise<boolean> {
  const enabled = await fs.readFile(path.join(dir, "cgroup.subtree_control"), "utf8").catch(() => "");
  if (CONTROLLERS.every((c) => enabled.split(/\s+/).includes(c))) return true;
  return fs.writeFile(path.join(dir, "cgroup.subtree_control"), CONTROLLERS.map((c) => `+${c}`).join(" ")).then(
    () => true,
    () => false,
  );
}

function parseMountinfoLine(line: string): { root: string; mountPoint: string; fstype: string; superOptions: string } | null {
  const [left, right] = line.split(" - ");
  if (!left || !right) return null;
  const l = left.split(" ");
  const r = right.split(" ");
  if (l.length < 5 || r.length < 3) return null;
  return { root: unescapeMount(l[3]!), mountPoint: unescapeMount(l[4]!), fstype: r[0]!, superOptions: r[2]! };
}

/** Mount paths escape space, tab, newline and backslash as octal. */
function unescapeMount(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

async function probe(dir: string, check: (probeDir: string) => Promise<void>): Promise<boolean> {
  const probeDir = path.join(dir, `fem-probe-${process.pid}`);
  try {
    await fs.mkdir(probeDir);
  } catch {
    return false;
  }
  try {
    await check(probeDir);
    return true;
  } catch {
    return false;
  } finally {
    await fs.rmdir(probeDir).catch(() => undefined);
  }
}

async function writeLimit(dir: string, controller: CgroupController, value: number, version: "v1" | "v2"): Promise<void> {
  if (controller === "pids") return fs.writeFile(path.join(dir, "pids.max"), String(value));
  if (controller === "cpu") {
    const quotaUs = Math.max(1_000, Math.round(value * CPU_PERIOD_US));
    if (version === "v2") return fs.writeFile(path.join(dir, "cpu.max"), `${quotaUs} ${CPU_PERIOD_US}`);
    await fs.writeFile(path.join(dir, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
    return fs.writeFile(path.join(dir, "cpu.cfs_quota_us"), String(quotaUs));
  }
  if (version === "v2") {
    await fs.writeFile(path.join(dir, "memory.max"), String(value));
    // Without swap the limit is a limit; a kernel without swap accounting has no such file.
    await fs.writeFile(path.join(dir, "memory.swap.max"), "0").catch(() => undefined);
    return;
  }
  await fs.writeFile(path.join(dir, "memory.limit_in_bytes"), String(value));
  await fs.writeFile(path.join(dir, "memory.memsw.limit_in_bytes"), String(value)).catch(() => undefined);
}

/** A `name value` counter of a cgroup file, 0 when absent. */
async function readCounter(file: string, name: string): Promise<number> {
  const text = await fs.readFile(file, "utf8").catch(() => "");
  const match = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}

/**
 * Removes the cgroup at `hierarchyPath` (and the cgroups below it) in every mounted hierarchy:
 * what a container runtime created under a parent the agent gave it. Only empty cgroups can be
 * removed, so it kills nothing; it retries while the runtime's own clean-up still holds one, up to
 * `timeoutMs`. Never throws.
 */
export async function removeCgroupTrees(hierarchyPath: string, timeoutMs = 5_000): Promise<void> {
  // Only a run's own cgroup: never a shared parent.
  if (!path.basename(hierarchyPath).startsWith("fem-")) return;
  const mountinfo = await fs.readFile(MOUNTINFO, "utf8").catch(() => "");
  const dirs = mountinfo
    .split("\n")
    .map(parseMountinfoLine)
    .filter((m) => m?.fstype === "cgroup" || m?.fstype === "cgroup2")
    .map((mount) => path.join(mount!.mountPoint, hierarchyPath));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = (await Promise.all(dirs.map(removeTree))).some(Boolean);
    if (!left || Date.now() > deadline) return;
    await delay(100);
  }
}

/** Removes `dir` and the cgroups below it; true when something is left. */
async function removeTree(dir: string): Promise<boolean> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) if (entry.isDirectory()) await removeTree(path.join(dir, entry.name));
  return fs.rmdir(dir).then(
    () => false,
    (err: unknown) => errorCode(err) !== "ENOENT",
  );
}

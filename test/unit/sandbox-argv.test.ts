import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { RunSpec } from "../../src/agent/launcher.js";
import { sandboxArgv, type SandboxArgvInput } from "../../src/agent/sandbox-argv.js";

const test = suite("sandbox launcher argv");

const PROGRAMS = { bwrap: "/usr/bin/bwrap", setpriv: "/usr/bin/setpriv", prlimit: "/usr/bin/prlimit", sh: "/usr/bin/sh", env: "/usr/bin/env" };
const NO_LIMITS = { memoryMiB: null, pidsMax: null, diskMiB: null, cpuSeconds: null, cpus: null };

function spec(overrides: Partial<RunSpec> = {}): RunSpec {
  return {
    runId: "00000000-0000-4000-8000-000000000001",
    attempt: 1,
    argv: ["/opt/tools/stats", "--in", "data.csv"],
    image: null,
    env: { MODE: "fast" },
    runDir: "/var/lib/fem/runs/r-1",
    searchPath: ["/usr/bin"],
    limits: NO_LIMITS,
    datasets: [],
    ...overrides,
  };
}

function argv(overrides: Partial<SandboxArgvInput> = {}): string[] {
  return sandboxArgv({
    programs: PROGRAMS,
    settings: { runAsUid: 65534, runAsGid: 65534 },
    dropPrivileges: true,
    rootArgs: ["--symlink", "usr/bin", "/bin"],
    spec: spec(),
    executable: "/opt/tools/stats",
    cgroup: null,
    ...overrides,
  });
}

/** The arguments after the first `--` (what bwrap runs inside). */
function inside(args: string[]): string[] {
  return args.slice(args.indexOf("--") + 1);
}

test("as root: no user namespace, and setpriv drops to the run's uid inside, after the mounts", () => {
  const args = argv();
  assert.is(args[0], "/usr/bin/bwrap");
  assert.not.ok(args.includes("--unshare-all"), "--unshare-all would add a user namespace with only root mapped");
  for (const flag of ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session", "--clearenv"]) assert.ok(args.includes(flag), flag);
  assert.equal(inside(args).slice(0, 10), [
    "/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--",
  ]);
});

test("as another user: every namespace including the user's, and no setpriv", () => {
  const args = argv({ dropPrivileges: false });
  assert.ok(args.includes("--unshare-all"));
  assert.not.ok(args.includes("/usr/bin/setpriv"));
});

test("the run's directory is the only writable bind, the tool outside /usr is bound read-only at its path", () => {
  const args = argv();
  const text = args.join(" ");
  assert.match(text, "--bind /var/lib/fem/runs/r-1 /sandbox");
  assert.match(text, "--chdir /sandbox");
  assert.match(text, "--ro-bind /usr /usr");
  assert.match(text, "--perms 0755 --dir /opt/tools --ro-bind /opt/tools/stats /opt/tools/stats");
  assert.is(args.filter((a) => a === "--bind").length, 1);
  assert.equal(inside(args).slice(-3), ["/opt/tools/stats", "--in", "data.csv"]);
});

test("a tool under /usr is not bound again; one inside the run's directory runs from /sandbox", () => {
  assert.not.match(argv({ executable: "/usr/bin/python3" }).join(" "), "--ro-bind /usr/bin/python3");
  const own = argv({ executable: "/var/lib/fem/runs/r-1/bin/run.sh" });
  assert.ok(inside(own).includes("/sandbox/bin/run.sh"));
});

test("the environment is the tool's only: set one by one after --clearenv, and bubblewrap's PWD is removed", () => {
  const args = argv();
  const text = args.join(" ");
  assert.match(text, "--clearenv");
  assert.match(text, "--setenv MODE fast");
  assert.match(inside(args).join(" "), "/usr/bin/env -u PWD -- /opt/tools/stats");
  assert.not.match(argv({ spec: spec({ env: { PWD: "/sandbox/work" } }) }).join(" "), "-u PWD");
});

test("each requested dataset is bound read-only at /data/<name> and named in FEM_DATASET_<NAME>; no other is bound", () => {
  const datasets = [
    { name: "cohort-2024", path: "/srv/data/cohort-2024" },
    { name: "atlas", path: "/srv/atlas.csv" },
  ];
  const args = argv({ spec: spec({ datasets }) });
  const text = args.join(" ");
  assert.match(text, "--perms 0755 --dir /data --ro-bind /srv/data/cohort-2024 /data/cohort-2024");
  assert.match(text, "--ro-bind /srv/atlas.csv /data/atlas");
  assert.match(text, "--setenv FEM_DATASET_COHORT_2024 /data/cohort-2024");
  assert.match(text, "--setenv FEM_DATASET_ATLAS /data/atlas");
  assert.is(args.filter((a) => a === "--bind").length, 1, "datasets are never bound writable");
  assert.ok(args.indexOf("--ro-bind /srv/atlas.csv".split(" ")[1]) < args.indexOf("--"), "mounted by bubblewrap, before the command");
  assert.not.match(argv().join(" "), "/data");
});

test("with cgroups the run enters them before bubblewrap, and prlimit covers only what they do not", () => {
  const limits = { memoryMiB: 256, pidsMax: 64, diskMiB: 100, cpuSeconds: 60, cpus: null };
  const procsFiles = ["/sys/fs/cgroup/memory/fem-r/cgroup.procs", "/sys/fs/cgroup/pids/fem-r/cgroup.procs"];
  const args = argv({ spec: spec({ limits }), cgroup: { controllers: ["memory", "pids"], procsFiles } });
  assert.equal(args.slice(0, 2), ["/usr/bin/sh", "-c"]);
  assert.equal(args.slice(3, 7), ["fem-enter-cgroups", ...procsFiles, "--"]);
  assert.is(args[7], "/usr/bin/bwrap");
  const prlimit = inside(args.slice(7)).slice(10);
  assert.equal(prlimit.slice(0, 4), ["/usr/bin/prlimit", `--fsize=${100 * 1024 * 1024}`, "--cpu=60", "--"]);
});

test("without cgroups prlimit limits address space and process count too", () => {
  const limits = { memoryMiB: 256, pidsMax: 64, diskMiB: null, cpuSeconds: null, cpus: null };
  const text = argv({ spec: spec({ limits }) }).join(" ");
  assert.match(text, `/usr/bin/prlimit --as=${256 * 1024 * 1024} --nproc=64 --`);
});

test("no limits, no prlimit", () => {
  assert.not.ok(argv().includes("/usr/bin/prlimit"));
});

test.run();

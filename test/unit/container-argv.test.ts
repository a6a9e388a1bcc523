import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  apptainerExecArgv,
  containerEnv,
  containerName,
  CONTAINER_NOFILE,
  CONTAINER_NPROC,
  envFileText,
  imageProblem,
  ociRunArgv,
  type OciArgvInput,
} from "../../src/agent/container-argv.js";
import { LaunchError, type RunLimits, type RunSpec } from "../../src/agent/launcher.js";

const test = suite("container launchers' argv");

const DIGEST = `sha256:${"ab".repeat(32)}`;
const IMAGE = `registry.example/stats@${DIGEST}`;
const RUN_ID = "00000000-0000-4000-8000-000000000001";
const NO_LIMITS: RunLimits = { memoryMiB: null, pidsMax: null, diskMiB: null, cpuSeconds: null, cpus: null };
const LIMITS: RunLimits = { memoryMiB: 256, pidsMax: 64, diskMiB: 100, cpuSeconds: 60, cpus: 1.5 };

function spec(overrides: Partial<RunSpec> = {}): RunSpec {
  return {
    runId: RUN_ID,
    attempt: 2,
    argv: ["/opt/stats/run", "--in", "data.csv"],
    image: IMAGE,
    env: { MODE: "fast", API_TOKEN: "s3cret-value" },
    runDir: "/var/lib/fem/runs/r-2",
    searchPath: ["/usr/bin"],
    limits: NO_LIMITS,
    datasets: [],
    ...overrides,
  };
}

function oci(overrides: Partial<OciArgvInput> = {}): string[] {
  return ociRunArgv({
    runtime: "podman",
    globalArgs: [],
    spec: spec(),
    image: IMAGE,
    user: { uid: 65534, gid: 65534 },
    envFile: "/var/lib/fem/containers/fem-r/env",
    cgroupParent: null,
    ...overrides,
  });
}

/** The value after each occurrence of `flag`. */
function valuesOf(args: string[], flag: string): string[] {
  return args.flatMap((arg, i) => (arg === flag ? [args[i + 1] ?? ""] : []));
}

for (const runtime of ["podman", "docker"] as const) {
  test(`${runtime}: no network, read-only root, no capabilities, no new privileges, the run's uid`, () => {
    const args = oci({ runtime });
    assert.is(args[0], "run");
    const text = args.join(" ");
    for (const part of ["--network none", "--read-only", "--cap-drop ALL", "--security-opt no-new-privileges", "--user 65534:65534", "--pull never"]) assert.match(text, part);
    assert.not.ok(args.includes("--rm"), "removed after its exit was inspected, not by the runtime");
    assert.equal(valuesOf(args, "--name"), [`fem-${RUN_ID}-2`]);
  });

  test(`${runtime}: the run's directory is mounted read-write at /sandbox, its working directory, with a private /tmp`, () => {
    const args = oci({ runtime });
    assert.equal(valuesOf(args, "--mount"), ["type=bind,source=/var/lib/fem/runs/r-2,target=/sandbox"]);
    assert.equal(valuesOf(args, "--workdir"), ["/sandbox"]);
    assert.equal(valuesOf(args, "--tmpfs"), ["/tmp"]);
    assert.is(args.filter((a) => a === "--mount" || a === "--volume" || a === "-v").length, 1);
  });

  test(`${runtime}: argv[0] is the entrypoint, the image is pinned, the rest of argv follows it`, () => {
    const args = oci({ runtime });
    assert.equal(valuesOf(args, "--entrypoint"), ["/opt/stats/run"]);
    assert.equal(args.slice(-3), [IMAGE, "--in", "data.csv"]);
  });

  test(`${runtime}: the environment comes from the env file only, and no value is on the command line`, () => {
    const args = oci({ runtime });
    assert.equal(valuesOf(args, "--env-file"), ["/var/lib/fem/containers/fem-r/env"]);
    assert.not.ok(args.includes("--env") || args.includes("-e"));
    assert.not.match(args.join(" "), "s3cret-value");
    assert.is(args.includes("--unsetenv-all"), runtime === "podman");
  });

  test(`${runtime}: explicit nofile and nproc ulimits, and none of the run's limits without limits`, () => {
    const args = oci({ runtime });
    assert.equal(valuesOf(args, "--ulimit"), [`nofile=${CONTAINER_NOFILE}:${CONTAINER_NOFILE}`, `nproc=${CONTAINER_NPROC}:${CONTAINER_NPROC}`]);
    for (const flag of ["--memory", "--pids-limit", "--cpus", "--cgroup-parent"]) assert.not.ok(args.includes(flag), flag);
  });

  test(`${runtime}: the run's limits become memory, pids, cpus, CPU-time and file-size limits and a bounded /tmp`, () => {
    const args = oci({ runtime, spec: spec({ limits: LIMITS }) });
    assert.equal(valuesOf(args, "--memory"), ["256m"]);
    assert.equal(valuesOf(args, "--memory-swap"), ["256m"], "no swap beyond the limit");
    assert.equal(valuesOf(args, "--pids-limit"), ["64"]);
    assert.equal(valuesOf(args, "--cpus"), ["1.5"]);
    assert.equal(valuesOf(args, "--ulimit").slice(0, 2), ["cpu=60:60", `fsize=${100 * 1024 * 1024}:${100 * 1024 * 1024}`]);
    assert.equal(valuesOf(args, "--tmpfs"), ["/tmp:size=100m"]);
  });
}

test("podman with the run's memory cgroup as parent: the limit is still the container's own (--memory), so conmon is not under it", () => {
  const args = oci({ spec: spec({ limits: LIMITS }), cgroupParent: "/agent/fem-r-2", globalArgs: ["--runtime", "runc", "--cgroup-manager", "cgroupfs"] });
  assert.equal(args.slice(0, 5), ["--runtime", "runc", "--cgroup-manager", "cgroupfs", "run"]);
  assert.equal(valuesOf(args, "--cgroup-parent"), ["/agent/fem-r-2"]);
  assert.equal(valuesOf(args, "--memory"), ["256m"]);
  assert.equal(valuesOf(args, "--memory-swap"), ["256m"]);
  assert.equal(valuesOf(args, "--pids-limit"), ["64"]);
});

test("an argv[0] podman would read as JSON, or a run directory a mount cannot name, is a launch error", () => {
  assert.throws(() => oci({ spec: spec({ argv: ["[\"/bin/sh\"]"] }) }), (err: unknown) => err instanceof LaunchError);
  assert.throws(() => oci({ spec: spec({ runDir: "/var/lib/fem,ro/runs/r" }) }), (err: unknown) => err instanceof LaunchError && /comma/.test(err.message));
});

test("only images pinned by digest run; a tag, a bare name, a scheme or no image are refused with the reason", () => {
  assert.is(imageProblem(IMAGE, "podman"), null);
  assert.is(imageProblem(`localhost/fem-test/busybox@${DIGEST}`, "podman"), null);
  assert.is(imageProblem(`registry.example:5000/team/stats:1.2@${DIGEST}`, "docker"), null);
  assert.match(imageProblem("registry.example/stats:1.2", "podman") ?? "", 'image "registry.example/stats:1.2" is not pinned by digest');
  assert.match(imageProblem("stats", "docker") ?? "", "name@sha256:<digest>");
  assert.match(imageProblem(`docker://stats@${DIGEST}`, "podman") ?? "", "not pinned by digest");
  assert.match(imageProblem(`-stats@${DIGEST}`, "podman") ?? "", "not pinned by digest");
  assert.match(imageProblem(`stats@sha256:${"a".repeat(63)}`, "podman") ?? "", "not pinned by digest");
  assert.match(imageProblem(null, "podman") ?? "", "needs the tool's image");
});

test("the env file has one NAME=value line per variable, and refuses what it cannot carry", () => {
  assert.is(envFileText({ MODE: "fast", URL: "a=b c" }, "oci"), "MODE=fast\nURL=a=b c\n");
  assert.is(envFileText({}, "oci"), "");
  assert.throws(() => envFileText({ KEY: "line1\nline2" }, "oci"), /line break/);
  assert.throws(() => envFileText({ "BAD NAME": "x" }, "oci"), /letters, digits and _/);
  assert.throws(() => envFileText({ "A=B": "x" }, "oci"), (err: unknown) => err instanceof LaunchError);
});

test("the shell env file of singularity/apptainer quotes every value", () => {
  assert.is(envFileText({ A: "it's $(rm -rf /)", B: "two\nlines" }, "shell"), `A='it'\\''s $(rm -rf /)'\nB='two\nlines'\n`);
});

test("singularity/apptainer: exec with no network, no home, a clean environment, the run's directory at /sandbox", () => {
  const args = apptainerExecArgv({ spec: spec({ limits: LIMITS }), image: IMAGE, user: { uid: 65534, gid: 65534 }, dropPrivileges: true, envFile: "/e/fem-r.env" });
  assert.is(args[0], "exec");
  const text = args.join(" ");
  for (const part of ["--containall", "--cleanenv", "--no-home", "--no-privs", "--net --network none", "--security uid:65534,gid:65534", "--pwd /sandbox", "--env-file /e/fem-r.env"]) {
    assert.match(text, part);
  }
  assert.equal(valuesOf(args, "--bind"), ["/var/lib/fem/runs/r-2:/sandbox:rw"]);
  assert.equal(valuesOf(args, "--memory"), ["256M"]);
  assert.equal(valuesOf(args, "--pids-limit"), ["64"]);
  assert.equal(valuesOf(args, "--cpus"), ["1.5"]);
  assert.equal(args.slice(-4), [`docker://${IMAGE}`, "/opt/stats/run", "--in", "data.csv"]);
  assert.not.match(text, "s3cret-value");
});

test("singularity/apptainer as another user: no --security, and no limits without limits", () => {
  const args = apptainerExecArgv({ spec: spec(), image: IMAGE, user: { uid: 65534, gid: 65534 }, dropPrivileges: false, envFile: "/e/x.env" });
  for (const flag of ["--security", "--memory", "--pids-limit", "--cpus"]) assert.not.ok(args.includes(flag), flag);
  assert.throws(() => apptainerExecArgv({ spec: spec({ runDir: "/a:b" }), image: IMAGE, user: { uid: 1, gid: 1 }, dropPrivileges: false, envFile: "/e" }), /colon/);
});

test("the datasets a run asked for are mounted read-only at /data/<name>, and the env says where", () => {
  const datasets = [{ name: "cohort-2024", path: "/srv/data/cohort" }];
  const argv = oci({ spec: spec({ datasets }) });
  assert.ok(argv.join(" ").includes("--mount type=bind,source=/srv/data/cohort,target=/data/cohort-2024,readonly"), argv.join(" "));
  const apptainer = apptainerExecArgv({ spec: spec({ datasets }), image: IMAGE, user: { uid: 65534, gid: 65534 }, dropPrivileges: false, envFile: "/e" });
  assert.ok(apptainer.join(" ").includes("--bind /srv/data/cohort:/data/cohort-2024:ro"), apptainer.join(" "));
  assert.is(containerEnv(spec({ datasets })).FEM_DATASET_COHORT_2024, "/data/cohort-2024");
  assert.throws(() => oci({ spec: spec({ datasets: [{ name: "x", path: "/srv/a,b" }] }) }), /cannot name/);
  assert.not.ok(oci().join(" ").includes("/data/"), "no dataset asked for, none mounted");
});

test("a run's container is named after the run and its attempt", () => {
  assert.is(containerName(RUN_ID, 3), `fem-${RUN_ID}-3`);
});

test.run();

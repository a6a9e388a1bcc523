import { suite } from "uvu";
import * as assert from "uvu/assert";
import { AppError } from "../../src/kernel/errors.js";
import { buildArgv } from "../../src/tools/command.js";
import { ArgType, type ToolArg } from "../../src/tools/tool.entity.js";

const arg = (a: Partial<ToolArg> & Pick<ToolArg, "id" | "type">): ToolArg => ({ default: null, position: null, prefix: null, separate: true, required: false, allowDash: false, ...a });

const args: ToolArg[] = [
  arg({ id: "input", type: ArgType.STRING, position: 0, required: true }),
  arg({ id: "count", type: ArgType.INT, prefix: "--count", default: 3 }),
  arg({ id: "ratio", type: ArgType.FLOAT, prefix: "--ratio=", separate: false }),
  arg({ id: "verbose", type: ArgType.BOOLEAN, prefix: "-v" }),
];

function expectBadInput(fn: () => unknown, argument: string, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, AppError);
    assert.is((err as AppError).code, "BAD_USER_INPUT");
    assert.is((err as AppError).facts.argument, argument);
    assert.match((err as AppError).message, pattern);
    return;
  }
  assert.unreachable("expected BAD_USER_INPUT");
}

const test = suite("command template");

test("builds argv in position order with prefixes, defaults and flags", () => {
  assert.equal(buildArgv("/bin/tool", args, { input: "data.csv", ratio: 0.5, verbose: true }, "p"), ["/bin/tool", "data.csv", "--count", "3", "--ratio=0.5", "-v"]);
  assert.equal(buildArgv("/bin/tool", args, { input: "x", count: 7, verbose: false }, "p"), ["/bin/tool", "x", "--count", "7"]);
});

test("keeps a value with spaces or shell characters as one argv item", () => {
  assert.equal(buildArgv("t", [arg({ id: "s", type: ArgType.STRING })], { s: "a b; rm -rf / $(x)" }, "p"), ["t", "a b; rm -rf / $(x)"]);
});

test("refuses a missing required argument, naming it", () => {
  expectBadInput(() => buildArgv("t", args, {}, "p"), "input", /missing required argument "input"/);
});

test("refuses a mistyped argument, naming it", () => {
  expectBadInput(() => buildArgv("t", args, { input: "x", count: "many" }, "p"), "count", /expects an integer/);
  expectBadInput(() => buildArgv("t", args, { input: "x", count: 1.5 }, "p"), "count", /expects an integer/);
  expectBadInput(() => buildArgv("t", args, { input: 3 }, "p"), "input", /expects a string/);
  expectBadInput(() => buildArgv("t", args, { input: "x", verbose: "yes" }, "p"), "verbose", /expects a boolean/);
});

test("refuses an unknown argument, naming it", () => {
  expectBadInput(() => buildArgv("t", args, { input: "x", colour: "red" }, "p"), "colour", /unknown argument "colour"/);
});

test("refuses a submitted STRING value starting with '-' unless its argument allows it", () => {
  const dashed = [arg({ id: "s", type: ArgType.STRING }), arg({ id: "range", type: ArgType.STRING, allowDash: true })];
  expectBadInput(() => buildArgv("t", dashed, { s: "-rf" }, "p"), "s", /"s" may not start with '-'/);
  expectBadInput(() => buildArgv("t", dashed, { s: "--output=/etc/passwd" }, "p"), "s", /may not start with '-'/);
  assert.equal(buildArgv("t", dashed, { s: "a-b", range: "-5:5" }, "p"), ["t", "a-b", "-5:5"]);
  // The tool's own default is the registrant's choice, not the submitter's.
  assert.equal(buildArgv("t", [arg({ id: "sep", type: ArgType.STRING, default: "--" })], {}, "p"), ["t", "--"]);
});

test("refuses an oversized STRING value, naming the argument's field", () => {
  expectBadInput(() => buildArgv("t", args, { input: "x".repeat(4_097) }, "p"), "input", /p\.input: at most 4096 characters/);
});

test.run();

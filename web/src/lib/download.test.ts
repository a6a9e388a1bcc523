import { describe, expect, it } from "vitest";
import { downloadName } from "./download";

describe("download names", () => {
  it("keeps the last path segment and replaces characters a file system refuses", () => {
    expect(downloadName("out/sub/weights.bin")).toBe("weights.bin");
    expect(downloadName("out/a:b?.txt")).toBe("a_b_.txt");
    expect(downloadName("")).toBe("download");
  });
});

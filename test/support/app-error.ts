import * as assert from "uvu/assert";
import { AppError } from "../../src/kernel/errors.js";

/** The AppError `fn` throws; fails the test when it throws something else or nothing. */
export function thrownAppError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, AppError);
    return err as AppError;
  }
  throw new Error("expected an error");
}

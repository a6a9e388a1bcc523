/**
 * A button that sends one mutation and, when the server refuses it, says why in the server's own
 * words next to it. Shown only to callers the page thinks may use it; the API still decides.
 */
import { useState } from "react";
import type { CombinedError } from "@urql/core";
import { errorMessage } from "../api/client";

export interface ActionButtonProps {
  label: string;
  /** Sends the mutation; resolves with its error, if any. */
  run(): Promise<{ error?: CombinedError }>;
  /** Asked with `window.confirm` first when set (destructive actions). */
  confirm?: string;
  testId?: string;
  /** Called after the server accepted the action. */
  onDone?(): void;
}

export function ActionButton({ label, run, confirm, testId, onDone }: ActionButtonProps) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const click = async () => {
    if (confirm && !window.confirm(confirm)) return;
    setBusy(true);
    setError(null);
    try {
      const result = await run();
      if (result.error) setError(errorMessage(result.error));
      else onDone?.();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="action">
      <button type="button" onClick={click} disabled={busy} data-testid={testId}>
        {busy ? `${label}…` : label}
      </button>
      {error && (
        <span className="error inline" role="alert" data-testid="action-error">
          {error}
        </span>
      )}
    </span>
  );
}

/** The outcome of an action: the server's own message when it refused, a short confirmation otherwise. */
export type ActionOutcome = { ok: true; text: string } | { ok: false; text: string } | null;

export function ActionMessage({ outcome }: { outcome: ActionOutcome }) {
  if (!outcome) return null;
  return outcome.ok ? (
    <p className="ok" role="status" data-testid="action-ok">
      {outcome.text}
    </p>
  ) : (
    <p className="error" role="alert" data-testid="action-error">
      {outcome.text}
    </p>
  );
}

import { stateColours } from "../lib/states";

/** A state as a coloured label (colour and word: never colour alone). */
export function StateBadge({ state }: { state: string }) {
  const { background, foreground } = stateColours(state);
  return (
    <span className="badge" data-state={state} style={{ background, color: foreground }}>
      {state}
    </span>
  );
}

import type { CombinedError } from "@urql/core";
import { errorMessage } from "../api/client";

export interface StatusProps {
  fetching: boolean;
  /** The query's error. */
  error?: CombinedError;
  /** Why the page's subscription stopped, if it did. */
  liveError?: string | null;
  what: string;
}

/** Loading and error lines every page shows the same way. */
export function Status({ fetching, error, liveError, what }: StatusProps) {
  if (error || liveError) {
    return (
      <p className="error" role="alert">
        {error ? `Could not load ${what}: ${errorMessage(error)}` : `Live updates stopped: ${liveError}`}
      </p>
    );
  }
  return fetching ? <p className="loading">Loading {what}…</p> : null;
}

/** A table's header row. */
export function TableHead({ columns }: { columns: readonly string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => (
          <th key={c} scope="col">
            {c}
          </th>
        ))}
      </tr>
    </thead>
  );
}

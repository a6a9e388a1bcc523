/** Cursor paging for newest-first lists: Newer goes back through the cursors already seen. */
import { useState } from "react";

export interface Pager {
  /** The `after` cursor of the page shown (null: the newest). */
  after: string | null;
  page: number;
  older(endCursor: string): void;
  newer(): void;
  reset(): void;
}

export function usePager(): Pager {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  return {
    after: cursors[cursors.length - 1],
    page: cursors.length,
    older: (endCursor) => setCursors((c) => [...c, endCursor]),
    newer: () => setCursors((c) => (c.length > 1 ? c.slice(0, -1) : c)),
    reset: () => setCursors([null]),
  };
}

export function PagerButtons({ pager, endCursor, hasNextPage }: { pager: Pager; endCursor: string | null | undefined; hasNextPage: boolean }) {
  return (
    <nav className="pager" aria-label="Pages of the list">
      <button type="button" onClick={pager.newer} disabled={pager.page === 1}>
        ← Newer
      </button>
      <span>Page {pager.page}</span>
      <button type="button" onClick={() => endCursor && pager.older(endCursor)} disabled={!hasNextPage || !endCursor}>
        Older →
      </button>
    </nav>
  );
}

/**
 * A run's log, live: replayed from the first line, then followed as the run writes. Lines are kept
 * in a LogBuffer (each seq once, no gap) and only those in view are in the DOM (TanStack Virtual,
 * fixed line height), so 100,000 lines scroll as smoothly as 100. After a dropped connection the socket resubscribes from the last seq
 * the page holds; a gap (never expected) is filled by a query. The view may be paused (lines keep
 * arriving, the view holds still), filtered by stream and search (LogIndex), and jumped to a seq.
 */
import { useVirtualizer } from "@tanstack/react-virtual";
import { memo, useCallback, useEffect, useMemo, useRef, useState, type UIEvent } from "react";
import { useClient } from "urql";
import { RunLogsQuery, RunLogsSubscription } from "../api/operations";
import { useStream } from "../api/use-stream";
import { LogBuffer, type LogLine } from "../lib/log-buffer";
import { ALL_LINES, LogIndex, splitMatches, type LogCriteria } from "../lib/log-filter";
import { LogToolbar } from "./log-toolbar";

/** Height of one line in px; the CSS of `.log-line` says the same. */
export const LINE_HEIGHT = 18;
/** Lines rendered above and below the visible ones. */
const OVERSCAN = 30;
/** Most lines one gap-filling query asks for (the API's own maximum). */
const FILL_PAGE = 10_000;

interface LineProps {
  line: LogLine;
  top: number;
  search: string;
  target: boolean;
}

// Memoised: a scroll re-renders only the rows that came into view, not every row in the window.
const Line = memo(function Line({ line, top, search, target }: LineProps) {
  return (
    <div
      className={`log-line stream-${line.stream.toLowerCase()}${target ? " target" : ""}`}
      style={{ transform: `translateY(${top}px)` }}
      data-seq={line.seq}
      data-stream={line.stream}
      aria-current={target ? "true" : undefined}
    >
      <span className="seq">{line.seq}</span>
      <span className="text">
        {splitMatches(line.text, search).map((part, i) => (part.match ? <mark key={i}>{part.text}</mark> : part.text))}
      </span>
    </div>
  );
});

export function LogView({ runId }: { runId: string }) {
  const urql = useClient();
  const buffer = useRef(new LogBuffer());
  const [count, setCount] = useState(0);
  const [following, setFollowing] = useState(true);
  const scroller = useRef<HTMLDivElement>(null);
  const filling = useRef(false);
  const frame = useRef<number | null>(null);
  const [criteria, setCriteria] = useState<LogCriteria>(ALL_LINES);
  const [paused, setPaused] = useState<number | null>(null);
  const [target, setTarget] = useState<number | null>(null);
  const [jumpError, setJumpError] = useState<string | null>(null);
  const index = useMemo(() => new LogIndex(criteria), [criteria]);

  // Many batches may come within one frame: render once per frame.
  const scheduleRender = useCallback(() => {
    if (frame.current !== null) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = null;
      setCount(buffer.current.lines.length);
    });
  }, []);
  useEffect(() => () => {
    if (frame.current !== null) cancelAnimationFrame(frame.current);
  }, []);

  const fillGap = useCallback(async () => {
    if (filling.current) return;
    filling.current = true;
    try {
      for (let missing = buffer.current.append([]).missingAfter; missing !== null; missing = buffer.current.append([]).missingAfter) {
        const result = await urql.query(RunLogsQuery, { runId, afterSeq: missing, first: FILL_PAGE }).toPromise();
        const lines = result.data?.runLogs.nodes ?? [];
        if (lines.length === 0) break;
        buffer.current.append(lines);
      }
    } finally {
      filling.current = false;
      scheduleRender();
    }
  }, [urql, runId, scheduleRender]);

  const error = useStream(
    RunLogsSubscription,
    // A getter: graphql-ws sends the variables again at each resubscription, so a reconnect
    // resumes after the last line held instead of replaying the whole log.
    () => ({
      runId,
      get afterSeq() {
        return buffer.current.lastSeq;
      },
    }),
    (data) => {
      const { added, missingAfter } = buffer.current.append(data.runLogs.lines);
      if (added > 0) scheduleRender();
      if (missingAfter !== null) void fillGap();
    },
    [runId],
  );

  // Paused: the view holds the lines it had; the others wait in the buffer.
  const lines = buffer.current.lines;
  const limit = paused ?? count;
  // The buffer is a ref on purpose (100,000 lines must not be copied per batch); `count` makes React render.
  index.update(lines, limit);
  const rows = index.length;
  // The virtualizer's API is mutable by design; React's compiler is told to leave this component be.
  // eslint-disable-next-line react-hooks/incompatible-library -- see above
  const virtualizer = useVirtualizer({ count: rows, getScrollElement: () => scroller.current, estimateSize: () => LINE_HEIGHT, overscan: OVERSCAN });

  // Following: keep the newest line in view whenever lines arrive.
  useEffect(() => {
    if (following && paused === null && rows > 0) virtualizer.scrollToIndex(rows - 1, { align: "end" });
  }, [rows, following, paused, virtualizer]);

  const showRow = (row: number) => {
    setFollowing(false);
    setTarget(lines[index.lineAt(row)].seq);
    virtualizer.scrollToIndex(row, { align: "center" });
  };
  const jump = (seq: number) => {
    const row = index.rowOfSeq(lines, seq);
    if (row < 0) return setJumpError(`Line ${seq} is not ${seq > buffer.current.lastSeq ? "written yet" : "shown"}.`);
    setJumpError(null);
    showRow(row);
  };
  const step = (backwards: boolean) => {
    const from = target === null ? Math.floor((virtualizer.scrollOffset ?? 0) / LINE_HEIGHT) - (backwards ? 0 : 1) : index.rowOfSeq(lines, target);
    const row = index.nextMatch(from, backwards);
    if (row >= 0) showRow(row);
  };

  const onScroll = (event: UIEvent<HTMLDivElement>) => {
    const element = event.currentTarget;
    // Scrolling up stops following; reaching the bottom again resumes it.
    const atBottom = element.scrollHeight - element.scrollTop - element.clientHeight < LINE_HEIGHT * 2;
    if (atBottom !== following) setFollowing(atBottom);
  };

  const visible = virtualizer.getVirtualItems().map((item) => {
    const line = lines[index.lineAt(item.index)];
    return <Line key={line.seq} line={line} top={item.start} search={criteria.search} target={line.seq === target} />;
  });

  return (
    <section className="logs" aria-labelledby="logs-title">
      <div className="logs-bar">
        <h2 id="logs-title">Log</h2>
        <span className="muted" data-testid="log-count">
          {count} lines
        </span>
        {rows !== count && (
          <span className="muted" data-testid="log-shown">
            {rows} shown
          </span>
        )}
        <span className="spacer" />
        {!following && paused === null && (
          <button type="button" onClick={() => setFollowing(true)} data-testid="log-follow">
            Follow new lines
          </button>
        )}
      </div>
      <LogToolbar
        criteria={criteria}
        onCriteria={(next) => {
          setCriteria(next);
          setTarget(null);
        }}
        paused={paused !== null}
        onPause={(pause) => {
          setPaused(pause ? count : null);
          if (!pause) setFollowing(true);
        }}
        waiting={paused === null ? 0 : count - paused}
        matches={index.matches}
        onStep={step}
        onJump={jump}
      />
      {jumpError && (
        <p className="error" role="alert" data-testid="log-jump-error">
          {jumpError}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          Log stream: {error}
        </p>
      )}
      <div ref={scroller} className="log-scroll" onScroll={onScroll} tabIndex={0} role="log" aria-live="off" aria-label="Log lines" data-testid="log">
        <div className="log-space" style={{ height: virtualizer.getTotalSize() }}>
          {visible}
        </div>
      </div>
    </section>
  );
}

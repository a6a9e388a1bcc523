/**
 * A run's log, live: replayed from the first line, then followed as the run writes. Lines are kept
 * in a LogBuffer (each seq once, no gap) and only those in view are in the DOM, so 100,000 lines
 * scroll as smoothly as 100. After a dropped connection the socket resubscribes from the last seq
 * the page holds; a gap (never expected) is filled by a query.
 */
import { useCallback, useEffect, useRef, useState, type ReactElement, type UIEvent } from "react";
import { useClient } from "urql";
import { RunLogsQuery, RunLogsSubscription } from "../api/operations";
import { useStream } from "../api/use-stream";
import { LogBuffer, type LogLine } from "../lib/log-buffer";

/** Height of one line in px; the CSS of `.log-line` says the same. */
export const LINE_HEIGHT = 18;
/** Lines rendered above and below the visible ones. */
const OVERSCAN = 30;
/** Most lines one gap-filling query asks for (the API's own maximum). */
const FILL_PAGE = 10_000;

function Line({ line, top }: { line: LogLine; top: number }) {
  return (
    <div className={`log-line stream-${line.stream.toLowerCase()}`} style={{ transform: `translateY(${top}px)` }} data-seq={line.seq}>
      <span className="seq">{line.seq}</span>
      <span className="text">{line.text}</span>
    </div>
  );
}

export function LogView({ runId }: { runId: string }) {
  const urql = useClient();
  const buffer = useRef(new LogBuffer());
  const [count, setCount] = useState(0);
  const [following, setFollowing] = useState(true);
  const [viewport, setViewport] = useState({ top: 0, height: 480 });
  const scroller = useRef<HTMLDivElement>(null);
  const filling = useRef(false);
  const frame = useRef<number | null>(null);

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

  // Following: keep the newest line in view whenever lines arrive.
  useEffect(() => {
    const element = scroller.current;
    if (following && element) element.scrollTop = element.scrollHeight;
  }, [count, following]);

  useEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const observer = new ResizeObserver(() => setViewport((v) => ({ ...v, height: element.clientHeight })));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);

  const onScroll = (event: UIEvent<HTMLDivElement>) => {
    const element = event.currentTarget;
    setViewport({ top: element.scrollTop, height: element.clientHeight });
    // Scrolling up stops following; reaching the bottom again resumes it.
    const atBottom = element.scrollHeight - element.scrollTop - element.clientHeight < LINE_HEIGHT * 2;
    if (atBottom !== following) setFollowing(atBottom);
  };

  const lines = buffer.current.lines;
  const first = Math.max(0, Math.floor(viewport.top / LINE_HEIGHT) - OVERSCAN);
  const last = Math.min(count, Math.ceil((viewport.top + viewport.height) / LINE_HEIGHT) + OVERSCAN);
  const visible: ReactElement[] = [];
  for (let i = first; i < last; i++) visible.push(<Line key={lines[i].seq} line={lines[i]} top={i * LINE_HEIGHT} />);

  return (
    <section className="logs" aria-labelledby="logs-title">
      <div className="logs-bar">
        <h2 id="logs-title">Log</h2>
        <span className="muted" data-testid="log-count">
          {count} lines
        </span>
        <span className="spacer" />
        {!following && (
          <button type="button" onClick={() => setFollowing(true)}>
            Follow new lines
          </button>
        )}
      </div>
      {error && (
        <p className="error" role="alert">
          Log stream: {error}
        </p>
      )}
      <div ref={scroller} className="log-scroll" onScroll={onScroll} tabIndex={0} role="log" aria-live="off" aria-label="Log lines" data-testid="log">
        <div className="log-space" style={{ height: count * LINE_HEIGHT }}>
          {visible}
        </div>
      </div>
    </section>
  );
}

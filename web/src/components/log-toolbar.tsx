/** The log view's controls: pause, streams, search (highlight or filter, step through matches), jump to a seq. */
import { useState, type FormEvent } from "react";
import type { LogStream } from "../lib/log-buffer";
import { LOG_STREAMS, type LogCriteria } from "../lib/log-filter";

export interface LogToolbarProps {
  criteria: LogCriteria;
  onCriteria(criteria: LogCriteria): void;
  paused: boolean;
  onPause(paused: boolean): void;
  /** Lines that arrived while paused. */
  waiting: number;
  matches: number;
  onStep(backwards: boolean): void;
  onJump(seq: number): void;
}

export function LogToolbar({ criteria, onCriteria, paused, onPause, waiting, matches, onStep, onJump }: LogToolbarProps) {
  const [seq, setSeq] = useState("");
  const toggle = (stream: LogStream) => {
    const streams = new Set(criteria.streams);
    if (streams.has(stream)) streams.delete(stream);
    else streams.add(stream);
    onCriteria({ ...criteria, streams });
  };
  const jump = (event: FormEvent) => {
    event.preventDefault();
    const value = Number(seq);
    if (Number.isInteger(value) && value > 0) onJump(value);
  };
  return (
    <div className="log-tools" role="toolbar" aria-label="Log controls">
      <button type="button" aria-pressed={paused} onClick={() => onPause(!paused)} data-testid="log-pause">
        {paused ? `Resume${waiting > 0 ? ` (${waiting} new)` : ""}` : "Pause"}
      </button>
      <fieldset className="streams">
        <legend>Streams</legend>
        {LOG_STREAMS.map((stream) => (
          <label key={stream}>
            <input type="checkbox" checked={criteria.streams.has(stream)} onChange={() => toggle(stream)} data-testid={`log-stream-${stream.toLowerCase()}`} />
            {stream.toLowerCase()}
          </label>
        ))}
      </fieldset>
      <span className="search">
        <label htmlFor="log-search">Search</label>
        <input
          id="log-search"
          type="search"
          value={criteria.search}
          onChange={(e) => onCriteria({ ...criteria, search: e.target.value })}
          onKeyDown={(e) => {
            if (e.key === "Enter") onStep(e.shiftKey);
          }}
          data-testid="log-search"
        />
        <label>
          <input type="checkbox" checked={criteria.onlyMatching} onChange={(e) => onCriteria({ ...criteria, onlyMatching: e.target.checked })} data-testid="log-only-matching" />
          only matching
        </label>
        {criteria.search && (
          <>
            <span className="muted" data-testid="log-matches" aria-live="polite">
              {matches} matching
            </span>
            <button type="button" onClick={() => onStep(true)} disabled={matches === 0} aria-label="Previous match">
              ↑
            </button>
            <button type="button" onClick={() => onStep(false)} disabled={matches === 0} aria-label="Next match">
              ↓
            </button>
          </>
        )}
      </span>
      <form className="jump" onSubmit={jump}>
        <label htmlFor="log-jump">Line</label>
        <input id="log-jump" type="number" min={1} inputMode="numeric" value={seq} onChange={(e) => setSeq(e.target.value)} data-testid="log-jump" />
        <button type="submit">Go</button>
      </form>
    </div>
  );
}

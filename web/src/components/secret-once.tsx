/** A secret the server shows only once (a node credential, an API token), with a copy button. */
import { useState } from "react";

export interface SecretOnceProps {
  label: string;
  value: string;
  /** Several lines (a command) rather than one word. */
  multiline?: boolean;
  testId?: string;
}

export function CopyableText({ label, value, multiline = false, testId }: SecretOnceProps) {
  const [copied, setCopied] = useState<"yes" | "no" | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied("yes");
    } catch {
      // Not a secure context, or the browser refused: the text stays selectable.
      setCopied("no");
    }
  };
  const id = `copy-${label.replace(/\W+/g, "-").toLowerCase()}`;
  return (
    <div className="copyable">
      <label htmlFor={id}>{label}</label>
      {multiline ? (
        <textarea id={id} readOnly value={value} rows={value.split("\n").length} spellCheck={false} data-testid={testId} onFocus={(e) => e.currentTarget.select()} />
      ) : (
        <input id={id} readOnly value={value} spellCheck={false} data-testid={testId} onFocus={(e) => e.currentTarget.select()} />
      )}
      <button type="button" onClick={copy}>
        Copy
      </button>
      <span role="status" className="muted">
        {copied === "yes" ? "Copied." : copied === "no" ? "Select the text and copy it." : ""}
      </span>
    </div>
  );
}

/** The panel around a secret shown once: what it is, that it will not be shown again, and a way to close it. */
export function SecretOnce({ title, children, onDone }: { title: string; children: React.ReactNode; onDone(): void }) {
  return (
    <section className="panel secret" aria-labelledby="secret-title" data-testid="secret-once">
      <h2 id="secret-title">{title}</h2>
      <p className="warning">Shown only now: the orchestrator keeps only its hash. Copy it before you close this.</p>
      {children}
      <button type="button" onClick={onDone}>
        Done, I have copied it
      </button>
    </section>
  );
}

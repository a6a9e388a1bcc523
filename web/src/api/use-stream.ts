/**
 * A subscription over the tab's graphql-ws socket, handing each result to `onData` (outside React's
 * state updaters, so the caller may dispatch). The socket resubscribes by itself after a drop, with
 * `variables` as they are then: a getter there resumes a stream from where the page is.
 */
import { stringifyDocument } from "@urql/core";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { useEffect, useRef, useState } from "react";
import { useApi } from "./context";

export function useStream<Data, Variables extends Record<string, unknown>>(
  document: TypedDocumentNode<Data, Variables>,
  variables: () => Variables,
  onData: (data: Data) => void,
  deps: readonly unknown[],
): string | null {
  const api = useApi();
  const [error, setError] = useState<string | null>(null);
  const handler = useRef(onData);
  useEffect(() => {
    handler.current = onData;
  });
  useEffect(() => {
    // eslint-disable-next-line react-hooks/set-state-in-effect -- a new stream starts without the previous one's error
    setError(null);
    const query = stringifyDocument(document);
    return api.ws.subscribe<Data>(
      { query, variables: variables() },
      {
        next: (result) => {
          if (result.errors?.length) setError(result.errors.map((e) => e.message).join("; "));
          if (result.data) handler.current(result.data);
        },
        error: (err) => setError(Array.isArray(err) ? err.map((e: { message: string }) => e.message).join("; ") : err instanceof Error ? err.message : "the connection closed"),
        complete: () => undefined,
      },
    );
    // Not `variables` (a new function each render): the caller names in `deps` what restarts the stream.
    // eslint-disable-next-line react-hooks/exhaustive-deps -- see above
  }, [api, document, ...deps]);
  return error;
}

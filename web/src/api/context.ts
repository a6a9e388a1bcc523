import { createContext, useContext } from "react";
import type { ApiClient } from "./client";

export const ApiContext = createContext<ApiClient | null>(null);

/** The signed-in tab's API client (for what urql's hooks do not cover: the log stream). */
export function useApi(): ApiClient {
  const client = useContext(ApiContext);
  if (!client) throw new Error("useApi outside a signed-in session");
  return client;
}

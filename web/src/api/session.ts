/** The API token of this browser tab: kept in sessionStorage, so it goes with the tab. */

const TOKEN_KEY = "fem.token";

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

export function bearer(token: string): string {
  return `Bearer ${token}`;
}

export const GRAPHQL_PATH = "/graphql";

/** ws(s)://<this host>/graphql: the API is on the page's own origin. */
export function webSocketUrl(location: Pick<Location, "protocol" | "host">): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${GRAPHQL_PATH}`;
}

/** How this orchestrator signs people in, from /config.json (small: the OIDC flow itself, api/oidc.ts, is loaded only when used). */

export interface SignInConfig {
  issuer: string;
  clientId: string;
  /** The API's audience, asked for as the token's resource (RFC 8707). */
  audience: string;
}

export const CONFIG_URL = "/config.json";

/** How this orchestrator signs people in; null: API tokens only (or /config.json unreadable). */
export async function loadSignInConfig(): Promise<SignInConfig | null> {
  try {
    const response = await fetch(CONFIG_URL, { headers: { accept: "application/json" } });
    if (!response.ok) return null;
    const body = (await response.json()) as { oidc?: SignInConfig | null };
    return body.oidc ?? null;
  } catch {
    return null;
  }
}

/** Whether the page was opened by the provider's redirect (a code or an error in the query). */
export function isSignInCallback(location: Pick<Location, "search">): boolean {
  const params = new URLSearchParams(location.search);
  return params.has("state") && (params.has("code") || params.has("error"));
}


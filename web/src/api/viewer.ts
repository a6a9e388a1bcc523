/** The signed-in caller's roles (from `me`), for pages that hide what the caller may not do. */
import { createContext, useContext } from "react";
import type { ViewerRoles } from "../lib/permissions";

export const ViewerContext = createContext<ViewerRoles | null>(null);

/** The caller's roles; null while `me` loads (pages then show no action buttons). */
export function useViewer(): ViewerRoles | null {
  return useContext(ViewerContext);
}

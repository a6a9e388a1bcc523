/**
 * Saving a file fetched with the bearer token: a plain link cannot send `Authorization`, so the
 * bytes are fetched, wrapped in a Blob and handed to the browser as a same-origin blob: download
 * (allowed by the page's CSP: no navigation, no script).
 */

/** The file name to save `path` (a sandbox-relative path) as: its last segment. */
export function downloadName(path: string): string {
  const name = path.split("/").filter(Boolean).pop() ?? "";
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must not reach a file name
  return name.replace(/[\u0000-\u001f<>:"\\|?*]/g, "_") || "download";
}

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.rel = "noopener";
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has taken the blob by the time the click's task ends.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Saves text as a file the browser downloads (a Blob URL: nothing leaves the page). */
export function downloadText(fileName: string, text: string, type: string): void {
  saveBlob(new Blob([text], { type }), fileName);
}

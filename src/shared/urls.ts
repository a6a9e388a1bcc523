/** Reading and showing broker and database URLs. */

/** The URL with its password replaced by `***`, for messages; an unparseable one hides everything before its last `@`. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return url.replace(/^([a-z][a-z\d+.-]*:\/\/)?.*@/i, "$1***@");
  }
}

/** The vhost an AMQP URL names by its path ("/" when it has none); throws on an unparseable URL. */
export function vhostOf(amqpUrl: string): string {
  const pathname = new URL(amqpUrl).pathname;
  return pathname === "" || pathname === "/" ? "/" : decodeURIComponent(pathname.slice(1));
}

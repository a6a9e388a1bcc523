/**
 * Several broker URLs for one RabbitMQ cluster: `AMQP_URL` may list the cluster's nodes,
 * comma-separated. Every client connects to the first that answers, in the order given, and moves
 * to the next when its node goes away.
 */
import { maskUrl, vhostOf } from "./urls.js";

/**
 * The URLs of a comma-separated list, in order, blanks dropped. A comma splits only where the next
 * URL starts (`amqp://`, `amqps://`, or anything `scheme://`), so a comma inside a password survives.
 */
export function splitUrlList(list: string): string[] {
  return list
    .split(/,(?=\s*[a-z][a-z\d+.-]*:\/\/)/i)
    .map((url) => url.replace(/^[\s,]+|[\s,]+$/g, ""))
    .filter((url) => url !== "");
}

/** The URL list `[amqpUrl, ...failoverUrls]` of a configuration. */
export function amqpUrlsOf(settings: { amqpUrl: string; amqpFailoverUrls?: readonly string[] }): string[] {
  return [settings.amqpUrl, ...(settings.amqpFailoverUrls ?? [])];
}

/**
 * What is wrong with a list of URLs that must reach one cluster, each problem the end of a sentence
 * (the caller names the setting): every URL on the same vhost and with the same scheme (the TLS
 * files apply to all), no node listed twice. URLs that do not parse are left to the caller.
 */
export function amqpUrlListProblems(urls: readonly string[]): string[] {
  const parseable = urls.filter((url) => URL.canParse(url));
  if (parseable.length < 2) return [];
  const problems: string[] = [];
  const first = parseable[0]!;
  const vhost = vhostOf(first);
  const scheme = new URL(first).protocol;
  const seen = new Set<string>();
  for (const url of parseable) {
    const parsed = new URL(url);
    if (vhostOf(url) !== vhost) problems.push(`lists URLs of different vhosts ("${vhost}" in ${maskUrl(first)}, "${vhostOf(url)}" in ${maskUrl(url)}): every URL must name the cluster's same vhost`);
    if (parsed.protocol !== scheme) problems.push(`mixes amqp:// and amqps:// (${maskUrl(first)}, ${maskUrl(url)}): every node of the cluster is reached the same way`);
    const address = `${parsed.hostname}:${parsed.port || (parsed.protocol === "amqps:" ? "5671" : "5672")}`;
    if (seen.has(address)) problems.push(`lists ${address} twice`);
    seen.add(address);
  }
  return problems;
}

/**
 * TLS to RabbitMQ (`amqps://`): the CA, certificate and key files both sides take, checked once at
 * start, and the socket options every AMQP connection is opened with.
 */
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { createSecureContext } from "node:tls";
import { errorCode } from "./errors.js";

/** The settings naming the files, as the environment spells them. */
export const AMQP_TLS_SETTINGS = { caFile: "FEM_AMQP_CA_FILE", certFile: "FEM_AMQP_CERT_FILE", keyFile: "FEM_AMQP_KEY_FILE" } as const;

export interface AmqpTlsFiles {
  /** PEM bundle of the CAs that may sign the broker's certificate; null trusts Node's default CAs. @default null */
  caFile: string | null;
  /** PEM client certificate (mutual TLS); given with `keyFile` or not at all. @default null */
  certFile: string | null;
  /** PEM private key of `certFile`. @default null */
  keyFile: string | null;
}

export const NO_AMQP_TLS_FILES: AmqpTlsFiles = { caFile: null, certFile: null, keyFile: null };

/** The files' contents (PEM text; strings survive rascal's deep copies of its configuration). */
export interface AmqpTls {
  ca?: string;
  cert?: string;
  key?: string;
}

/** A problem with the TLS settings: the settings concerned, and what is wrong, to follow their names. */
export interface AmqpTlsProblem {
  settings: (keyof AmqpTlsFiles)[];
  message: string;
}

/** What is wrong with giving these files with this URL. */
export function amqpTlsProblems(amqpUrl: string, files: AmqpTlsFiles): AmqpTlsProblem[] {
  const problems: AmqpTlsProblem[] = [];
  const given = (Object.keys(AMQP_TLS_SETTINGS) as (keyof AmqpTlsFiles)[]).filter((k) => files[k] !== null);
  // TLS settings that would be silently ignored are almost always a mistake in the URL.
  if (given.length > 0 && !/^amqps:/i.test(amqpUrl)) {
    problems.push({ settings: given, message: "set but the AMQP URL is not amqps://, so TLS would not be used: write amqps:// or drop the setting" });
  }
  if ((files.certFile === null) !== (files.keyFile === null)) {
    problems.push({ settings: ["certFile", "keyFile"], message: "go together (a client certificate and its key)" });
  }
  return problems;
}

/** Reads one file's text; throws an Error with a one-line message naming the setting. */
export type TlsFileReader = (file: string, setting: string) => Promise<string>;

/** Reads a file with no check on who else may read it (CA bundles and certificates are public). */
export const readPublicFile: TlsFileReader = async (file, setting) => {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    const code = errorCode(err);
    const why = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "cannot be read by this user" : code === "EISDIR" ? "is a directory" : `cannot be read (${code ?? "error"})`;
    throw new Error(`${setting} ${file} ${why}`);
  }
};

/**
 * Reads the files and checks that TLS can use them (PEM, a key that matches its certificate).
 * `readKey` reads the private key (the agent refuses one that group or others may read). Throws an
 * Error with a one-line message naming the setting; never quotes a key.
 */
export async function readAmqpTls(files: AmqpTlsFiles, readKey: TlsFileReader = readPublicFile): Promise<AmqpTls> {
  const tls: AmqpTls = {};
  if (files.caFile !== null) tls.ca = pem(await readPublicFile(files.caFile, AMQP_TLS_SETTINGS.caFile), "CERTIFICATE", AMQP_TLS_SETTINGS.caFile, files.caFile);
  if (files.certFile !== null) tls.cert = pem(await readPublicFile(files.certFile, AMQP_TLS_SETTINGS.certFile), "CERTIFICATE", AMQP_TLS_SETTINGS.certFile, files.certFile);
  if (files.keyFile !== null) tls.key = pem(await readKey(files.keyFile, AMQP_TLS_SETTINGS.keyFile), "PRIVATE KEY", AMQP_TLS_SETTINGS.keyFile, files.keyFile);
  if (tls.ca !== undefined) usable({ ca: tls.ca }, AMQP_TLS_SETTINGS.caFile);
  if (tls.cert !== undefined) usable({ cert: tls.cert, key: tls.key }, `${AMQP_TLS_SETTINGS.certFile} / ${AMQP_TLS_SETTINGS.keyFile}`);
  return tls;
}

/** Throws when OpenSSL cannot use `tls`, with its reason (e.g. "key values mismatch"), never the content. */
function usable(tls: AmqpTls, settings: string): void {
  try {
    createSecureContext(tls);
  } catch (err) {
    throw new Error(`${settings}: TLS cannot use the files given (${(err as Error).message.split("\n")[0]})`);
  }
}

function pem(text: string, label: string, setting: string, file: string): string {
  if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text)) throw new Error(`${setting} ${file} holds no PEM ${label.toLowerCase()} (-----BEGIN … ${label}-----)`);
  return text;
}

/**
 * The TLS options of a connection to `amqpUrl` (none for `amqp://`): the files' contents, and the
 * URL's host name as the name the broker's certificate must carry (SNI; an IP address is checked
 * against the certificate's IP entries instead). Without a CA, Node's default trust store applies.
 */
export function amqpSocketOptions(amqpUrl: string, tls: AmqpTls): Record<string, unknown> {
  const url = new URL(amqpUrl);
  if (url.protocol !== "amqps:") return {};
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return { ...tls, ...(isIP(host) === 0 ? { servername: host } : {}) };
}

const TLS_VERIFY_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** A sentence saying what to do about a TLS failure with this error code, or null when `code` is not one. */
export function amqpTlsHint(code: string | undefined): string | null {
  if (code === undefined) return null;
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return "the broker's certificate does not name the host in the URL";
  if (TLS_VERIFY_CODES.has(code)) return `the broker's certificate is not trusted: set ${AMQP_TLS_SETTINGS.caFile} to the CA that signed it`;
  if (/ALERT_CERTIFICATE_REQUIRED|ALERT_HANDSHAKE_FAILURE|ALERT_BAD_CERTIFICATE|ALERT_UNKNOWN_CA/.test(code)) {
    return `the broker refused the TLS handshake (it may require a client certificate: ${AMQP_TLS_SETTINGS.certFile} and ${AMQP_TLS_SETTINGS.keyFile}, signed by a CA it trusts)`;
  }
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || code === "EPROTO") return "the port does not speak TLS (amqps:// to a plain AMQP port?)";
  if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_")) return "the TLS handshake failed";
  return null;
}

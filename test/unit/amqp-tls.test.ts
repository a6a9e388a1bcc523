import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseAgentConfig } from "../../src/agent/config.js";
import { readPrivateFile } from "../../src/agent/private-file.js";
import { buildBrokerConfig } from "../../src/agent/index.js";
import { parseConfig } from "../../src/config.js";
import { orchestratorTopology } from "../../src/messaging/topology.js";
import { amqpSocketOptions, amqpTlsHint, readAmqpTls } from "../../src/shared/index.js";
import { createTestPki, type TestPki } from "../support/pki.js";

const test = suite("AMQPS settings and TLS files");
const AGENT = { FEM_NODE_ID: "site-a", FEM_ALLOW_UNSIGNED: "true", FEM_NODE_CREDENTIAL_FILE: "/etc/fem/node.credential" };
let dir: string;
let pki: TestPki;
let other: TestPki;

/** The message `promise` rejects with; fails the test when it resolves. */
async function failure(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => assert.unreachable("expected a rejection"),
    (err: unknown) => (err as Error).message,
  ) as Promise<string>;
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "fem-tls-unit-"));
  await mkdir(join(dir, "a"));
  await mkdir(join(dir, "b"));
  [pki, other] = await Promise.all([createTestPki(join(dir, "a")), createTestPki(join(dir, "b"))]);
});

test.after(async () => rm(dir, { recursive: true, force: true }));

test("the orchestrator takes FEM_AMQP_CA_FILE, FEM_AMQP_CERT_FILE and FEM_AMQP_KEY_FILE with an amqps:// URL", () => {
  const parsed = parseConfig({ AMQP_URL: "amqps://fem:pw@broker.example:5671/fem", FEM_AMQP_CA_FILE: "/etc/fem/ca.pem", FEM_AMQP_CERT_FILE: "/etc/fem/c.pem", FEM_AMQP_KEY_FILE: "/etc/fem/c.key" });
  assert.ok(parsed.ok && parsed.config.amqpTls.caFile === "/etc/fem/ca.pem" && parsed.config.amqpTls.keyFile === "/etc/fem/c.key");
  const none = parseConfig({});
  assert.equal(none.ok && none.config.amqpTls, { caFile: null, certFile: null, keyFile: null });
});

test("TLS files with an amqp:// URL, and a certificate without its key, are configuration problems on both sides", () => {
  const plain = parseConfig({ AMQP_URL: "amqp://guest:guest@127.0.0.1:5672", FEM_AMQP_CA_FILE: "/etc/fem/ca.pem" });
  assert.equal(!plain.ok && plain.problems, ["FEM_AMQP_CA_FILE: set but the AMQP URL is not amqps://, so TLS would not be used: write amqps:// or drop the setting"]);
  const half = parseConfig({ AMQP_URL: "amqps://broker.example", FEM_AMQP_CERT_FILE: "/etc/fem/c.pem" });
  assert.equal(!half.ok && half.problems, ["FEM_AMQP_CERT_FILE, FEM_AMQP_KEY_FILE: go together (a client certificate and its key)"]);

  const agentPlain = parseAgentConfig({ ...AGENT, FEM_AMQP_CA_FILE: "ca.pem" }, []);
  assert.equal(!agentPlain.ok && agentPlain.problems, [
    "FEM_AMQP_CA_FILE / --amqp-ca-file set but the AMQP URL is not amqps://, so TLS would not be used: write amqps:// or drop the setting",
  ]);
  const agentHalf = parseAgentConfig({ ...AGENT, AMQP_URL: "amqps://broker.example" }, ["--amqp-key-file", "client.key"]);
  assert.equal(!agentHalf.ok && agentHalf.problems, ["FEM_AMQP_CERT_FILE / --amqp-cert-file, FEM_AMQP_KEY_FILE / --amqp-key-file go together (a client certificate and its key)"]);
});

test("the agent resolves its TLS files to absolute paths, from the environment or flags", () => {
  const parsed = parseAgentConfig({ ...AGENT, AMQP_URL: "amqps://broker.example/fem", FEM_AMQP_CA_FILE: "/etc/fem/ca.pem" }, ["--amqp-cert-file=client.pem", "--amqp-key-file", "client.key"]);
  if (!parsed.ok) throw new Error(parsed.problems.join("\n"));
  assert.equal(parsed.config.amqpTls, { caFile: "/etc/fem/ca.pem", certFile: join(process.cwd(), "client.pem"), keyFile: join(process.cwd(), "client.key") });
});

test("socket options carry the files and the URL's host name for amqps:// only", () => {
  const tls = { ca: "CA", cert: "CERT", key: "KEY" };
  assert.equal(amqpSocketOptions("amqp://broker.example:5672", tls), {});
  assert.equal(amqpSocketOptions("amqps://broker.example:5671/fem", tls), { ca: "CA", cert: "CERT", key: "KEY", servername: "broker.example" });
  // An IP address is not a server name (SNI); Node checks it against the certificate's IP entries.
  assert.equal(amqpSocketOptions("amqps://127.0.0.1:5671", { ca: "CA" }), { ca: "CA" });
  assert.equal(amqpSocketOptions("amqps://[::1]:5671", {}), {});
});

test("every connection the orchestrator and the agent open gets the TLS options", () => {
  const tls = { ca: "CA" };
  const topology = orchestratorTopology({ amqpUrl: "amqps://fem:pw@broker.example:5671/fem", tls, instanceId: "i1", ingestPrefetch: 10 }) as any;
  assert.equal(topology.vhosts.fem.connections[0].socketOptions, { noDelay: true, timeout: 10_000, ca: "CA", servername: "broker.example", clientProperties: { connection_name: "fem-orchestrator i1" } });
  const agent = buildBrokerConfig({ amqpUrl: "amqps://broker.example:5671/fem", tls, nodeId: "site-a", credential: "c", capacity: 1 }) as any;
  assert.equal(agent.vhosts.fem.connections[0].socketOptions, { noDelay: true, timeout: 10_000, ca: "CA", servername: "broker.example" });
  // Each node of a cluster is checked against its own name.
  const failover = buildBrokerConfig({ amqpUrl: "amqps://rabbit-1:5671/fem", amqpFailoverUrls: ["amqps://rabbit-2:5671/fem"], tls, nodeId: "site-a", credential: "c", capacity: 1 }) as any;
  assert.equal(failover.vhosts.fem.connections.map((c: any) => c.socketOptions.servername), ["rabbit-1", "rabbit-2"]);
});

test("reads the CA, certificate and key, and says in one line what is wrong with a file", async () => {
  const tls = await readAmqpTls({ caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile });
  assert.match(tls.ca ?? "", /BEGIN CERTIFICATE/);
  assert.match(tls.key ?? "", /PRIVATE KEY/);
  assert.equal(await readAmqpTls({ caFile: null, certFile: null, keyFile: null }), {});

  const missing = join(dir, "missing.pem");
  assert.match(await failure(readAmqpTls({ caFile: missing, certFile: null, keyFile: null })), new RegExp(`^FEM_AMQP_CA_FILE ${missing} does not exist$`));
  const notPem = join(dir, "not.pem");
  await writeFile(notPem, "hello");
  assert.match(await failure(readAmqpTls({ caFile: notPem, certFile: null, keyFile: null })), /^FEM_AMQP_CA_FILE .*not\.pem holds no PEM certificate/);
  assert.match(await failure(readAmqpTls({ caFile: null, certFile: pki.clientCertFile, keyFile: pki.clientCertFile })), /^FEM_AMQP_KEY_FILE .* holds no PEM private key/);
  // A key that is not the certificate's: OpenSSL's reason, never the key.
  assert.match(await failure(readAmqpTls({ caFile: null, certFile: pki.clientCertFile, keyFile: other.clientKeyFile })), /^FEM_AMQP_CERT_FILE \/ FEM_AMQP_KEY_FILE: TLS cannot use the files given \(.*\)$/);
});

test("the agent refuses a client key that group or others may read", async () => {
  const openKey = join(dir, "open.key");
  await copyFile(pki.clientKeyFile, openKey);
  await chmod(openKey, 0o640);
  const files = { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: openKey };
  assert.match(await failure(readAmqpTls(files, readPrivateFile)), /^FEM_AMQP_KEY_FILE .*open\.key is open to group or others \(mode 0640\); make it readable by the agent's user only: chmod 600/);
  await chmod(openKey, 0o600);
  assert.ok((await readAmqpTls(files, readPrivateFile)).key);
});

test("names TLS failures by what to do about them, and nothing else", () => {
  assert.match(amqpTlsHint("SELF_SIGNED_CERT_IN_CHAIN") ?? "", /set FEM_AMQP_CA_FILE/);
  assert.match(amqpTlsHint("UNABLE_TO_VERIFY_LEAF_SIGNATURE") ?? "", /not trusted/);
  assert.match(amqpTlsHint("ERR_TLS_CERT_ALTNAME_INVALID") ?? "", /does not name the host/);
  assert.match(amqpTlsHint("ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED") ?? "", /client certificate/);
  assert.is(amqpTlsHint("ECONNREFUSED"), null);
  assert.is(amqpTlsHint(undefined), null);
});

test.run();

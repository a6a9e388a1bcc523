/** The orchestrator keys a node pinned, and the check every node message passes before it is acted on. */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { verifyNodeMessage, type NodeMessage } from "../messaging/contracts.js";

/** Whether a message may be acted on, or why not. */
export type TrustCheck = (message: NodeMessage) => { ok: true } | { ok: false; reason: string };

const PEM_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g;

/** Every Ed25519 public key in a PEM file (one or more blocks). Throws when there is none or one is not Ed25519. */
export async function readPinnedKeys(file: string): Promise<KeyObject[]> {
  const text = await readFile(file, "utf8");
  const keys = (text.match(PEM_BLOCK) ?? []).map((pem) => createPublicKey(pem));
  if (keys.length === 0) throw new Error(`${file} holds no PEM public key (-----BEGIN PUBLIC KEY-----)`);
  const wrong = keys.find((key) => key.asymmetricKeyType !== "ed25519");
  if (wrong) throw new Error(`${file} holds a ${wrong.asymmetricKeyType} key; orchestrator keys are Ed25519`);
  return keys;
}

/** The check for messages signed with one of `publicKeys`, issued at most `maxAgeMs` ago. */
export function signatureCheck(publicKeys: KeyObject[], maxAgeMs: number): TrustCheck {
  return (message) => verifyNodeMessage(message, { publicKeys, maxAgeMs });
}

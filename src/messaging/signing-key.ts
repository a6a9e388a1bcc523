/** The orchestrator's Ed25519 key that signs every dispatch and cancel, kept in a PEM file. */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { errorCode } from "../shared/index.js";

export interface SigningKey {
  privateKey: KeyObject;
  /** SPKI PEM of the public key, for nodes to pin (`FEM_ORCHESTRATOR_PUBLIC_KEY_FILE`). */
  publicKeyPem: string;
}

/**
 * Reads the PKCS#8 PEM private key at `path`, or generates one there (mode 0600, never
 * overwriting a key another instance wrote first) and writes its public key next to it as
 * `<path>.pub`. Throws when the file exists but holds no Ed25519 private key.
 */
export function loadOrCreateSigningKey(path: string): SigningKey {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (err) {
    if (errorCode(err) !== "ENOENT") throw err;
    const pair = generateKeyPairSync("ed25519");
    pem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    try {
      writeFileSync(path, pem, { mode: 0o600, flag: "wx" });
    } catch (writeErr) {
      if (errorCode(writeErr) !== "EEXIST") throw writeErr;
      pem = readFileSync(path, "utf8");
    }
  }
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`${path} holds a ${privateKey.asymmetricKeyType} key, not an Ed25519 one`);
  const publicKeyPem = createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
  writeFileSync(`${path}.pub`, publicKeyPem, { mode: 0o644 });
  return { privateKey, publicKeyPem };
}

/**
 * The activity signing key: every instance and worker signs webhook batches with the same key,
 * and the admin port publishes the public keys as a JWKS.
 *
 * File format: a JWK Set of PRIVATE keys, mode 0600.
 *
 *   {"keys":[{"kty":"EC","crv":"P-256","x":"…","y":"…","d":"…","kid":"…","alg":"ES256","use":"sig"}, …]}
 *
 * The FIRST key signs; the others are retired keys, still published in the JWKS so a receiver can
 * verify batches signed before a rotation (or by an instance not restarted yet). A generated
 * key's `kid` is its RFC 7638 JWK thumbprint.
 *
 * Where the file comes from:
 * - TOLLGATE_SIGNING_KEY_FILE (a mounted secret, say): read as is, never written.
 * - otherwise `<dataDir>/signing-keys.json`, generated on first start when absent. Generation is
 *   race-free across processes: the key set is written to a private temp file, synced, then
 *   hard-linked to the final name, which fails when another process got there first (see
 *   private-file.ts); the loser discards its key and reads the winner's. So processes starting together end with ONE key, and
 *   nobody ever reads a half-written file.
 *
 * Rotation (`rotateSigningKeys`, for a CLI command) writes [new, ...old] to a temp file and renames
 * it over the old one. Running processes keep the keys they loaded: restart them (one by one) to
 * sign with the new key. Every key stays published until removed by hand from the file.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  calculateJwkThumbprint,
  CompactSign,
  compactVerify,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
} from 'jose';
import { GatewayError } from '../errors.js';
import { createPrivateFile, replacePrivateFile } from '../private-file.js';

export const SIGNING_KEY_FILE_NAME = 'signing-keys.json';
export const SIGNING_ALG = 'ES256';
/** The JWS `typ` of a signed activity batch. */
export const ACTIVITY_JWS_TYP = 'tollgate-activity+jws';

/** A public EC P-256 signing key as published in the JWKS. */
export interface PublicJWK {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  alg: 'ES256';
  use: 'sig';
}

/** A private key as stored in the key file. */
export interface PrivateJWK extends PublicJWK {
  d: string;
}

export interface Signer {
  /** The kid in every signature's protected header. */
  readonly kid: string;
  /** JWS compact serialization of the payload: ES256, protected header {alg, kid, typ}. */
  sign(payload: Uint8Array): Promise<string>;
}

export interface SigningKeys {
  /** The key file in use. */
  readonly file: string;
  readonly signer: Signer;
  /** Public parts of every key in the file (signing key first); never a `d`. A fresh copy each call. */
  jwks(): { keys: PublicJWK[] };
}

export interface LoadSigningKeysOptions {
  /** TOLLGATE_SIGNING_KEY_FILE: read, never generated or written. */
  keyFile?: string;
  /** Where `signing-keys.json` is generated when no keyFile is given. */
  dataDir: string;
}

const invalid = (file: string, problem: string, cause?: unknown): GatewayError =>
  new GatewayError(
    'TOLLGATE_ERR_CONFIG_INVALID',
    `signing key file ${file}: ${problem}`,
    cause === undefined ? undefined : { cause },
  );

const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Checks one parsed key; returns it with only the known members. */
function checkKey(file: string, raw: unknown, index: number): PrivateJWK {
  const where = `keys[${index}]`;
  if (typeof raw !== 'object' || raw === null) throw invalid(file, `${where} is not an object`);
  const k = raw as Record<string, unknown>;
  if (k.kty !== 'EC' || k.crv !== 'P-256')
    throw invalid(file, `${where} must be an EC P-256 key (kty "EC", crv "P-256")`);
  if (k.alg !== undefined && k.alg !== SIGNING_ALG)
    throw invalid(file, `${where}.alg must be ES256, got ${JSON.stringify(k.alg)}`);
  if (k.use !== undefined && k.use !== 'sig')
    throw invalid(file, `${where}.use must be "sig", got ${JSON.stringify(k.use)}`);
  if (!isNonEmptyString(k.kid)) throw invalid(file, `${where}.kid must be a non-empty string`);
  for (const member of ['x', 'y', 'd'] as const) {
    if (!isNonEmptyString(k[member]))
      throw invalid(file, `${where}.${member} missing: the file must hold private keys`);
  }
  return {
    kty: 'EC',
    crv: 'P-256',
    x: k.x as string,
    y: k.y as string,
    d: k.d as string,
    kid: k.kid,
    alg: 'ES256',
    use: 'sig',
  };
}

function parseKeySet(file: string, text: string): PrivateJWK[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(file, 'not valid JSON', err);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0)
    throw invalid(file, 'must be a JWK Set {"keys":[...]} with at least one key');
  const checked = keys.map((k, i) => checkKey(file, k, i));
  const kids = new Set<string>();
  for (const key of checked) {
    if (kids.has(key.kid)) throw invalid(file, `kid ${JSON.stringify(key.kid)} appears twice`);
    kids.add(key.kid);
  }
  return checked;
}

async function readKeySet(file: string): Promise<PrivateJWK[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw invalid(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
  }
  return parseKeySet(file, text);
}

const toPublic = ({ kty, crv, x, y, kid, alg, use }: PublicJWK): PublicJWK => ({ kty, crv, x, y, kid, alg, use });

const serialize = (keys: readonly PrivateJWK[]): string => `${JSON.stringify({ keys }, null, 2)}\n`;

/** A new P-256 signing key; its kid is the RFC 7638 thumbprint of the public key. */
export async function generateSigningKey(): Promise<PrivateJWK> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint({ kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y }, 'sha256');
  return { kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y!, d: jwk.d!, kid, alg: 'ES256', use: 'sig' };
}

/** Reads the data dir's key file, generating it first when absent. */
async function readOrGenerate(file: string): Promise<PrivateJWK[]> {
  try {
    return parseKeySet(file, await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof GatewayError) throw err;
      throw invalid(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
    }
  }
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const key = await generateSigningKey();
  if (await createPrivateFile(file, serialize([key]))) return [key];
  return readKeySet(file);
}

/**
 * Loads the key set (generating `<dataDir>/signing-keys.json` when no keyFile is given and it is
 * absent) and checks that the signing key's private and public halves belong together.
 * A missing key file, bad JSON or a bad key is a GatewayError TOLLGATE_ERR_CONFIG_INVALID.
 */
export async function loadSigningKeys(options: LoadSigningKeysOptions): Promise<SigningKeys> {
  const file = options.keyFile ?? path.join(options.dataDir, SIGNING_KEY_FILE_NAME);
  const keys = options.keyFile ? await readKeySet(file) : await readOrGenerate(file);
  const current = keys[0]!;
  const published = keys.map(toPublic);

  let privateKey: CryptoKey;
  try {
    privateKey = await importJWK(current, SIGNING_ALG);
    const probe = await new CompactSign(new TextEncoder().encode('probe'))
      .setProtectedHeader({ alg: SIGNING_ALG })
      .sign(privateKey);
    await compactVerify(probe, await importJWK(published[0]!, SIGNING_ALG));
  } catch (err) {
    throw invalid(file, `keys[0] (kid ${JSON.stringify(current.kid)}) is not a usable ES256 key pair`, err);
  }

  const header = { alg: SIGNING_ALG, kid: current.kid, typ: ACTIVITY_JWS_TYP } as const;
  const signer: Signer = {
    kid: current.kid,
    sign: function sign(payload: Uint8Array) {
      return new CompactSign(payload).setProtectedHeader(header).sign(privateKey);
    },
  };

  return {
    file,
    signer,
    jwks: function jwks() {
      return { keys: published.map(toPublic) };
    },
  };
}

export interface RotationResult {
  /** The new signing key's kid. */
  kid: string;
  /** The kids of the retired keys still published, newest first. */
  retired: string[];
}

/**
 * Puts a new key first in the key file and keeps the old ones as retired keys. Creates the file
 * (with the new key only) when absent. Two rotations at the same moment: the last one wins.
 */
export async function rotateSigningKeys(file: string): Promise<RotationResult> {
  const key = await generateSigningKey();
  let old: PrivateJWK[];
  try {
    old = parseKeySet(file, await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof GatewayError) throw err;
      throw invalid(file, `cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
    }
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    if (await createPrivateFile(file, serialize([key]))) return { kid: key.kid, retired: [] };
    old = await readKeySet(file);
  }
  await replacePrivateFile(file, serialize([key, ...old]));
  return { kid: key.kid, retired: old.map((k) => k.kid) };
}

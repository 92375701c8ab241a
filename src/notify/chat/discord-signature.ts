/**
 * Discord interaction signatures: Discord signs `<X-Signature-Timestamp><raw body>` with the
 * application's Ed25519 key and sends the signature as hex in `X-Signature-Ed25519`; the
 * application's public key is shown, as 64 hex digits, in its developer portal page.
 *
 * Discord refuses to register an interactions endpoint that accepts a badly signed request, and
 * probes it with some from time to time, so every malformed input here is a plain `false`.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';

// The DER SubjectPublicKeyInfo header for an Ed25519 key (RFC 8410): the 32 raw key bytes
// follow it. Node takes public keys as SPKI, not as raw bytes.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const KEY_HEX = /^[0-9a-fA-F]{64}$/;
const SIGNATURE_HEX = /^[0-9a-fA-F]{128}$/;

// Curve constants for the point check below (RFC 8032 section 5.1).
const P = 2n ** 255n - 19n;
const D = mod(-121665n * modInverse(121666n));

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = mod(result * b);
    b = mod(b * b);
    e >>= 1n;
  }
  return result;
}

function modInverse(a: bigint): bigint {
  // P is prime, so a^(P-2) is a's inverse (Fermat).
  return modPow(a, P - 2n);
}

/**
 * True when 32 bytes decode to a point of the curve, as RFC 8032 section 5.1.3 decodes them: a
 * canonical y below p, and an x with x² = (y² - 1) / (d·y² + 1). OpenSSL imports any 32 bytes
 * as a key and only fails at verification, so without this a mistyped key would pass config
 * validation and then refuse every request.
 */
function isCurvePoint(bytes: Buffer): boolean {
  const le = Buffer.from(bytes).reverse();
  const n = BigInt(`0x${le.toString('hex')}`);
  const sign = n >> 255n;
  const y = n & (2n ** 255n - 1n);
  if (y >= P) return false;
  const y2 = mod(y * y);
  const x2 = mod((y2 - 1n) * modInverse(mod(D * y2 + 1n)));
  // x = 0 has no negative: the sign bit must then be clear.
  if (x2 === 0n) return sign === 0n;
  // Euler's criterion: x2 has a square root mod p exactly when x2^((p-1)/2) is 1.
  return modPow(x2, (P - 1n) / 2n) === 1n;
}

/**
 * Why a configured Discord public key is unusable, or null when it is fine: it must be 64 hex
 * digits (32 bytes) that encode a point of the Ed25519 curve.
 */
export function publicKeyProblem(hex: string): string | null {
  if (!KEY_HEX.test(hex)) return `not an Ed25519 public key: expected 64 hex digits, got ${hex.length} characters`;
  if (!isCurvePoint(Buffer.from(hex, 'hex'))) return 'not an Ed25519 public key: the 32 bytes are not a point of the curve';
  return null;
}

/** The node:crypto key for 32 raw Ed25519 public key bytes given as hex, or null when it is not one. */
function keyOf(publicKeyHex: string): KeyObject | null {
  if (!KEY_HEX.test(publicKeyHex)) return null;
  try {
    const der = Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(publicKeyHex, 'hex')]);
    return createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    return null;
  }
}

/** What {@link verifyDiscordSignature} checks: the application's key, both headers as received and the raw body. */
export interface DiscordSignatureInput {
  /** The application's public key, 64 hex digits. */
  publicKeyHex: string;
  /** The `X-Signature-Timestamp` header. */
  timestamp: string | undefined;
  /** The `X-Signature-Ed25519` header, 128 hex digits. */
  signature: string | undefined;
  /** The request body exactly as received. */
  rawBody: string;
}

/**
 * True when `signature` is the application key's Ed25519 signature of `timestamp + rawBody`.
 * Any missing or malformed part gives false; this never throws.
 */
export function verifyDiscordSignature(input: DiscordSignatureInput): boolean {
  const { publicKeyHex, timestamp, signature, rawBody } = input;
  // The timestamp is not checked for shape: it is signed as-is, and an empty one is still
  // a value (RFC 8032's first test vector signs the empty message).
  if (timestamp === undefined || signature === undefined || !SIGNATURE_HEX.test(signature)) return false;
  const key = keyOf(publicKeyHex);
  if (key === null) return false;
  try {
    return verify(null, Buffer.from(timestamp + rawBody, 'utf8'), key, Buffer.from(signature, 'hex'));
  } catch {
    return false;
  }
}

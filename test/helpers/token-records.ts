import { expect } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { generateToken, generateTokenId, hashToken, type TokenType } from '../../src/tokens/format.js';
import { storedRecord, type NewTokenRecord } from '../../src/tokens/store.js';

/** A time an hour ago: new records are created after it. */
export const T0 = Date.now() - 3_600_000;
let seq = 0;

/** A new token record with a fresh id, hash and name, each one created a second after the last. */
export function newRecord(over: Partial<NewTokenRecord> & { type?: TokenType } = {}): NewTokenRecord {
  seq++;
  const type = over.type ?? 'production';
  return {
    id: generateTokenId(),
    name: `token-${seq}`,
    type,
    hash: hashToken(generateToken(type)),
    createdAt: T0 + seq * 1000,
    createdBy: 'alice',
    expiresAt: null,
    ...over,
  };
}

/** As the stores return a new record: every field insert does not take is null. */
export const asStored = (record: NewTokenRecord) => storedRecord(record);

/** Expects the promise to reject with a GatewayError of this code. */
export async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  expect((err as GatewayError).code).toBe(code);
}

/**
 * `value` when it is a positive safe integer; otherwise a TypeError naming the factory and the
 * option (`createRedisStreamSink: maxLen must be a positive integer, got 0`). For the options of
 * factories that take counts and sizes, checked once when a factory runs.
 */
export function positiveInteger(factory: string, name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new TypeError(`${factory}: ${name} must be a positive integer, got ${value}`);
  return value;
}

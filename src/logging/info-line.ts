import pino, { type Logger } from 'pino';
import { isoTime } from '../iso-time.js';

/**
 * Writes pre-serialised info lines through a pino logger's own destination, in pino's exact
 * shape — `{"level":"info","time":"<ISO>","pid":N,<members>,"msg":"<msg>"}` — so they sit in
 * order among the logger's other lines and parse the same.
 *
 * For the one line written per proxied request: pino's generic path (redaction, key walk,
 * a Date per line) was a visible share of a request's CPU in the bench's profile; this costs one
 * string concatenation. Only the caller's allow-listed members are written, each already JSON.
 * Returns undefined when the logger's level hides info lines.
 */
export function createInfoLineWriter(logger: Logger, msg: string): ((members: string) => void) | undefined {
  if (!logger.isLevelEnabled('info')) return undefined;
  const stream = (logger as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym]!;
  const chindings = (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] ?? '';
  const suffix = `,"msg":${JSON.stringify(msg)}}\n`;
  return function writeInfoLine(members: string): void {
    stream.write(`{"level":"info","time":"${isoTime(Date.now())}"${chindings}${members}${suffix}`);
  };
}

import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../../src/logging/logger.js';

/** A logger through the gateway's own factory whose output lands in `lines` (one chunk a line, as written). */
export function captureLogger(level = 'info'): { logger: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const logger = createLogger(
    level,
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  return { logger, lines, text: () => lines.join('') };
}

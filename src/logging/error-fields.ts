/**
 * The fields of an error a log line may carry: name, message and code, nothing else (no stack,
 * no request, no headers: an error from a client library can hold a whole request object).
 */
export function errorFields(err: unknown): { name?: string; message: string; code?: string } {
  if (err instanceof Error) return { name: err.name, message: err.message, code: (err as NodeJS.ErrnoException).code };
  return { message: String(err) };
}

/**
 * The Host a request names (or a trusted proxy's X-Forwarded-Host), checked before anything uses
 * it: a DNS name, an IPv4 address or a bracketed IPv6 address, with an optional port. Without
 * TOLLGATE_PUBLIC_URL the gateway names itself by it in rewritten metadata and redirects, so a
 * Host such as `evil.example"><b>x` must never get that far: it is a 400.
 */
const HOST = /^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * Returns a checker: the host serialised as a URL parser does (lower case, default port dropped
 * for the scheme), or undefined when it is not a valid `host[:port]`. Clients send the same Host
 * again and again, so the last answer is remembered: no parse per request.
 */
export function createHostCheck(scheme: 'http' | 'https'): (value: string) => string | undefined {
  let lastValue = '';
  let lastResult: string | undefined;
  return function checkHost(value) {
    if (value === lastValue) return lastResult;
    let result: string | undefined;
    if (value.length <= 262 && HOST.test(value)) {
      try {
        const url = new URL(`${scheme}://${value}/`);
        const port = url.port === '' ? undefined : Number(url.port);
        result = port !== undefined && port > 65535 ? undefined : url.host;
      } catch {
        result = undefined;
      }
    }
    lastValue = value;
    lastResult = result;
    return result;
  };
}

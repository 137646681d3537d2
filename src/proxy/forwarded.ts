import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { Config } from '../config/index.js';
import type { ForwardedInfo } from './headers.js';
import { createHostCheck } from './host.js';

/**
 * Who a request is from and how the client reached the gateway: the socket peer, unless it is a
 * trusted proxy (TOLLGATE_TRUSTED_PROXIES), whose X-Forwarded-For/-Proto/-Host are believed.
 * TOLLGATE_PUBLIC_URL, when set, names the host clients use, whatever a request says. A Host or
 * believed X-Forwarded-Host that is not a valid `host[:port]` makes `host` null: a bad request.
 */
export function createForwardedResolver(
  config: Pick<Config, 'trustedProxies' | 'tls' | 'publicUrl'>,
): (incoming: IncomingMessage) => ForwardedInfo {
  const trust = proxyAddr.compile(config.trustedProxies);
  const noTrustedProxies = config.trustedProxies.length === 0;
  const ownProto = config.tls ? 'https' : 'http';
  const publicHost = config.publicUrl ? new URL(config.publicUrl).host : undefined;
  const checkHost = createHostCheck(ownProto);
  const checkForwardedHost = createHostCheck(ownProto);
  /** The Host header checked (undefined when absent, null when invalid), even when TOLLGATE_PUBLIC_URL overrides it. */
  const hostOf = (incoming: IncomingMessage): string | null | undefined => {
    const host = incoming.headers.host;
    return host === undefined ? undefined : (checkHost(host) ?? null);
  };

  return function forwardedInfo(incoming) {
    const socketIp = incoming.socket.remoteAddress ?? '';
    const host = hostOf(incoming);
    if (noTrustedProxies || !trust(socketIp, 0)) {
      return {
        clientIp: socketIp,
        peerIp: socketIp,
        priorForwardedFor: undefined,
        proto: ownProto,
        host: host === null ? null : (publicHost ?? host),
      };
    }
    const xfp = incoming.headers['x-forwarded-proto'];
    const xfh = incoming.headers['x-forwarded-host'];
    const forwardedHost = typeof xfh === 'string' ? (checkForwardedHost(xfh) ?? null) : host;
    return {
      clientIp: proxyAddr(incoming, trust),
      peerIp: socketIp,
      priorForwardedFor: incoming.headers['x-forwarded-for'] as string | undefined,
      proto: typeof xfp === 'string' && (xfp === 'https' || xfp === 'http') ? xfp : ownProto,
      host: host === null || forwardedHost === null ? null : (publicHost ?? forwardedHost),
    };
  };
}

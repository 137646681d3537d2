import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { Config } from '../config/index.js';
import type { ForwardedInfo } from './headers.js';

/**
 * Who a request is from and how the client reached the gateway: the socket peer, unless it is a
 * trusted proxy (TOLLGATE_TRUSTED_PROXIES), whose X-Forwarded-For/-Proto/-Host are believed.
 * TOLLGATE_PUBLIC_URL, when set, names the host clients use, whatever a request says.
 */
export function createForwardedResolver(config: Pick<Config, 'trustedProxies' | 'tls' | 'publicUrl'>): (incoming: IncomingMessage) => ForwardedInfo {
  const trust = proxyAddr.compile(config.trustedProxies);
  const noTrustedProxies = config.trustedProxies.length === 0;
  const ownProto = config.tls ? 'https' : 'http';
  const publicHost = config.publicUrl ? new URL(config.publicUrl).host : undefined;

  return function forwardedInfo(incoming) {
    const socketIp = incoming.socket.remoteAddress ?? '';
    if (noTrustedProxies || !trust(socketIp, 0)) {
      return { clientIp: socketIp, peerIp: socketIp, priorForwardedFor: undefined, proto: ownProto, host: publicHost ?? incoming.headers.host };
    }
    const xfp = incoming.headers['x-forwarded-proto'];
    const xfh = incoming.headers['x-forwarded-host'];
    return {
      clientIp: proxyAddr(incoming, trust),
      peerIp: socketIp,
      priorForwardedFor: incoming.headers['x-forwarded-for'] as string | undefined,
      proto: typeof xfp === 'string' && (xfp === 'https' || xfp === 'http') ? xfp : ownProto,
      host: publicHost ?? (typeof xfh === 'string' ? xfh : incoming.headers.host),
    };
  };
}

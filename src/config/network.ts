import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import proxyAddr from 'proxy-addr';
import { ENV_NAMES } from './settings.js';
import type { Checked, Context } from './sources.js';
import type { Config } from './types.js';
import { originProblem, parseHttpUrl } from './urls.js';

type Network = Pick<Config, 'publicUrl' | 'trustedProxies' | 'tls'>;

/** The proxy listener as clients see it: its public origin, the proxies in front of it, its TLS files. */
export function checkNetwork({ s, where, cwd }: Context): Checked<Network> {
  const problems: string[] = [];

  let publicUrl: string | undefined;
  if (s.publicUrl) {
    const problem = originProblem(s.publicUrl, 'https://artifacts.example.com');
    if (problem) problems.push(`${where('publicUrl')}: ${problem}`);
    else publicUrl = parseHttpUrl(s.publicUrl)!.origin;
  }

  const trustedProxies = s.trustedProxies ?? [];
  try {
    proxyAddr.compile(trustedProxies);
  } catch (err) {
    problems.push(
      `${where('trustedProxies')}: must be a comma-separated list of IP addresses or CIDR ranges (${(err as Error).message})`,
    );
  }

  let tls: Config['tls'];
  if (s.tlsCert || s.tlsKey) {
    if (!s.tlsCert || !s.tlsKey) {
      problems.push(`${ENV_NAMES.tlsCert} and ${ENV_NAMES.tlsKey} must be set together`);
    } else {
      problems.push(...unreadable(where('tlsCert'), s.tlsCert, cwd), ...unreadable(where('tlsKey'), s.tlsKey, cwd));
      tls = { certFile: path.resolve(cwd, s.tlsCert), keyFile: path.resolve(cwd, s.tlsKey) };
    }
  }

  return { value: { publicUrl, trustedProxies, tls }, problems };
}

/** A problem when `file` (relative to `cwd`) cannot be read. */
export function unreadable(where: string, file: string, cwd: string): string[] {
  try {
    accessSync(path.resolve(cwd, file), fsConstants.R_OK);
    return [];
  } catch {
    return [`${where}: cannot read file ${JSON.stringify(file)}`];
  }
}

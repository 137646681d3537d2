/** Authorization header values, as clients send them to the proxy port. */

export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/** Basic with the token as the password (the user names the project). */
export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

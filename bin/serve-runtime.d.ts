// Types of ./serve-runtime.js for the TypeScript that imports it (the Dockerfile test).
export declare const SERVE_NODE_FLAGS: string[];
export declare const SERVE_ENV: { GLIBC_TUNABLES: string };

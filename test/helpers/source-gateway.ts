import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The gateway as a child process, built from the CURRENT src/ (not from dist/, which the fast
 * test project does not rebuild): every src/**\/*.ts is transpiled (types stripped, no type
 * check) into a private temp root with node_modules and examples linked in. For tests where the
 * behaviour under test may kill the process (an uncaught exception), which an in-process gateway
 * would turn into an error of the whole test run.
 */

let root: string | undefined;

function transpiledRoot(): string {
  if (root) return root;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tollgate-src-build-'));
  const src = path.join(REPO_ROOT, 'src');
  const walk = (rel: string): void => {
    for (const entry of readdirSync(path.join(src, rel), { withFileTypes: true })) {
      const relPath = path.join(rel, entry.name);
      if (entry.isDirectory()) {
        walk(relPath);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts')) {
        const out = ts.transpileModule(readFileSync(path.join(src, relPath), 'utf8'), {
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
          fileName: relPath,
        });
        const file = path.join(dir, 'dist', relPath.replace(/\.ts$/, '.js'));
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, out.outputText);
      }
    }
  };
  walk('.');
  cpSync(path.join(src, 'admin', 'page'), path.join(dir, 'dist', 'admin', 'page'), { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), readFileSync(path.join(REPO_ROOT, 'package.json')));
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  symlinkSync(path.join(REPO_ROOT, 'examples'), path.join(dir, 'examples'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  root = dir;
  return dir;
}

export interface SourceGateway {
  url: string;
  adminUrl: string;
  child: ChildProcess;
  pid: number;
  /** Everything the process wrote (stdout then stderr). */
  output(): string;
  /** Resolves with the exit code and signal once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True while the process runs. */
  alive(): boolean;
  stop(): Promise<void>;
}

/** Starts `node dist/main.js` from the transpiled src/ with exactly these TOLLGATE_* settings. */
export async function startSourceGateway(env: Record<string, string>, startTimeoutMs = 20_000): Promise<SourceGateway> {
  const cwd = transpiledRoot();
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TOLLGATE_')) childEnv[k] = v;
  Object.assign(childEnv, { TOLLGATE_HOST: '127.0.0.1', TOLLGATE_PORT: '0', TOLLGATE_ADMIN_PORT: '0', ...env });
  const child = spawn(process.execPath, ['dist/main.js'], { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onOutput = (): void => {};
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    onOutput();
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      running = false;
      resolve({ code, signal });
    });
  });
  process.once('exit', () => child.kill('SIGKILL'));

  // The "tollgate listening" line, as soon as it is written; start-up failing or taking too long rejects.
  let timer: NodeJS.Timeout | undefined;
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    onOutput = () => {
      const line = out
        .split('\n')
        .slice(0, -1)
        .find((l) => l.includes('"tollgate listening"')); // whole lines only
      if (line) resolve(JSON.parse(line) as Record<string, unknown>);
    };
    void exited.then(() => reject(new Error(`gateway exited during start-up:\n${out}${err}`)));
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway not listening after ${startTimeoutMs} ms:\n${out}${err}`));
    }, startTimeoutMs);
  }).finally(() => {
    clearTimeout(timer);
    onOutput = () => {};
  });
  const proxyPort = new URL(String(listening.proxy)).port;
  const adminPort = new URL(String(listening.admin)).port;
  return {
    url: `http://127.0.0.1:${proxyPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    child,
    pid: child.pid!,
    output: () => out + err,
    exited,
    alive: () => running,
    async stop() {
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

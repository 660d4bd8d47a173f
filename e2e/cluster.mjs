// The end-to-end suite against a cluster (BOTLINK_E2E_CLUSTER=1): where a test starts "the
// server", this starts PostgreSQL, Redis, three botlink-server nodes and HAProxy
// (deploy/haproxy.cfg), and the app talks to HAProxy. The app must not see a difference.
// Counters are read from every node directly and summed (exact, not the published sum).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './fault_proxy.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
const PG = `source ${ROOT}scripts/lib/postgres.sh;`;


async function untilListening(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(25);
  }
  throw new Error(`nothing listens on ${port}`);
}

/** A call to a server's API: resolves to { status, json, text }. */
export async function call(base, p, { method = 'GET', token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, text };
}

/** The databases, Redis and HAProxy of a cluster, kept across its nodes' restarts (by `--db`). */
const infras = new Map();

async function infraFor(key, lbPort) {
  if (infras.has(key)) return infras.get(key);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botlink-e2e-cluster-'));
  const [pgPort, redisPort, ...nodePorts] = await Promise.all([0, 1, 2, 3, 4].map(freePort));
  lbPort ??= await freePort();
  execFileSync('bash', ['-c', `${PG} pg_start ${dir}/pg ${pgPort}`], { stdio: 'inherit' });
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  await untilListening(redisPort);
  const env = { ...process.env, BOTLINK_LB_ADDR: `127.0.0.1:${lbPort}` };
  nodePorts.forEach((p, i) => { env[`BOTLINK_NODE${i + 1}`] = `127.0.0.1:${p}`; });
  const haproxy = spawn('haproxy', ['-db', '-f', `${ROOT}deploy/haproxy.cfg`], { env, stdio: 'ignore' });
  await untilListening(lbPort);
  const infra = { key, dir, pgPort, redisPort, nodePorts, lbPort, redis, haproxy };
  infras.set(key, infra);
  return infra;
}

function stopInfra(infra) {
  infra.haproxy.kill('SIGKILL');
  infra.redis.kill('SIGKILL');
  execFileSync('bash', ['-c', `${PG} pg_stop ${infra.dir}/pg`], { stdio: 'inherit' });
  fs.rmSync(infra.dir, { recursive: true, force: true });
  infras.delete(infra.key);
}

/**
 * A server on a database in memory (or a cluster node) makes its own temporary data directory,
 * which a `kill -9` leaves behind: unless `args` name one, the test gives it one (added to
 * `args`), to be removed when the process is gone.
 */
export function temporaryDataDir(args) {
  if (args.includes('--data-dir')) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botlink-e2e.'));
  args.push('--data-dir', dir);
  return dir;
}

function startNode(infra, i, flags, bin) {
  const args = ['--addr', `127.0.0.1:${infra.nodePorts[i]}`, '--node-id', `node${i + 1}`,
    '--database-url', `postgres://postgres@127.0.0.1:${infra.pgPort}/postgres`,
    '--redis-url', `redis://127.0.0.1:${infra.redisPort}`,
    '--cluster-secret', 'the-end-to-end-clusters-secret', ...flags];
  const dataDir = temporaryDataDir(args);
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (dataDir) proc.once('exit', () => fs.rmSync(dataDir, { recursive: true, force: true }));
  let log = '';
  const onData = (c) => { log += c; };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${i + 1} did not start:\n${log}`)), 20_000);
    const check = setInterval(() => {
      if (/listening on http/.test(log)) { clearTimeout(timer); clearInterval(check); resolve({ proc, log: () => log }); }
    }, 20);
    proc.on('exit', (code) => { clearTimeout(timer); clearInterval(check); reject(new Error(`node exited ${code}:\n${log}`)); });
  });
}

function sum(all) {
  const total = { perUser: {} };
  for (const s of all) {
    for (const [k, v] of Object.entries(s)) {
      if (typeof v === 'number') total[k] = (total[k] ?? 0) + v;
    }
    for (const [user, u] of Object.entries(s.perUser ?? {})) {
      const t = (total.perUser[user] ??= { opened: 0, open: 0, replaced: 0 });
      for (const k of Object.keys(t)) t[k] += u[k] ?? 0;
    }
  }
  return total;
}

/**
 * Like helpers' spawnServer, for a cluster: resolves to { url, stop, kill, api, stats, resetStats }.
 * `bin`: the botlink-server binary (the test build, which links through the WhatsApp double that
 * `flags` name with --whatsapp-url).
 */
export async function startCluster(flags, { bin }) {
  const take = (flag) => {
    const i = flags.indexOf(flag);
    if (i < 0) return undefined;
    const value = flags[i + 1];
    flags = [...flags.slice(0, i), ...flags.slice(i + 2)];
    return value;
  };
  const addr = take('--addr');
  const db = take('--db');
  if (!flags.includes('--static')) flags = ['--static', `${ROOT}dist`, ...flags];
  const lbPort = addr && !addr.endsWith(':0') ? Number(addr.split(':').pop()) : undefined;
  const infra = await infraFor(db && db !== ':memory:' ? db : Symbol('cluster'), lbPort);
  // A node that cannot start fails the cluster, and the ones that did are stopped: a process
  // left running would keep this test file from ever ending.
  const started = await Promise.allSettled([0, 1, 2].map((i) => startNode(infra, i, flags, bin)));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    for (const r of started) if (r.status === 'fulfilled') r.value.proc.kill('SIGKILL');
    if (infras.get(infra.key) === infra) stopInfra(infra);
    throw failed.reason;
  }
  const nodes = started.map((r) => r.value);
  const url = `http://127.0.0.1:${infra.lbPort}`;
  // HAProxy marks a node up after two health checks 500 ms apart.
  await sleep(1_200);
  const nodeUrls = infra.nodePorts.map((p) => `http://127.0.0.1:${p}`);
  const stopNodes = async (signal) => {
    await Promise.all(nodes.map(({ proc }) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return undefined;
      proc.kill(signal);
      return new Promise((r) => proc.once('exit', r));
    }));
  };
  return {
    url,
    log: () => nodes.map((n) => n.log()).join('\n'),
    api: (p, opts) => call(url, p, opts),
    stats: async () => sum(await Promise.all(nodeUrls.map(async (u) => (await call(u, '/api/dev/stats')).json))),
    resetStats: async () => { await Promise.all(nodeUrls.map((u) => call(u, '/api/dev/stats/reset', { method: 'POST' }))); },
    stop: async () => { await stopNodes('SIGTERM'); if (infras.get(infra.key) === infra) stopInfra(infra); },
    /** kill -9 of every node; the databases and HAProxy stay, as after a crash of the app tier. */
    kill: async () => { await stopNodes('SIGKILL'); },
  };
}

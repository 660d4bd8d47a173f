// Shared fixtures for the end-to-end suite: a reference server on a free loopback port serving
// the release build (dist/), headless Debian Chromium driven by playwright-core, and the
// server's /api/dev counters as the witness.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { before, after } from 'node:test';
import { call, startCluster, temporaryDataDir } from './cluster.mjs';

const ROOT = new URL('..', import.meta.url).pathname;

/** A full-page screenshot for the README: written to docs/ with BOTLINK_SCREENSHOTS=1, checked always. */
export async function screenshot(page, name) {
  const png = await page.screenshot({ fullPage: true });
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  if (process.env.BOTLINK_SCREENSHOTS === '1') fs.writeFileSync(`${ROOT}docs/${name}.png`, png);
}

/** How the binaries of the runs on the WhatsApp double are built (scripts/test does it). */
export const DOUBLE_BUILD = 'cargo build -p botlink-server -p wa-double --features botlink-server/whatsapp-double --profile test --target-dir target/double';
const DOUBLE_BIN = `${ROOT}target/double/debug`;

/** The WhatsApp double (crates/wa-double) on a free port: { url, ws, admin, stats, stop }. */
export async function startDouble() {
  const bin = `${DOUBLE_BIN}/wa-double`;
  assert.ok(fs.existsSync(bin), `${bin} is missing: ${DOUBLE_BUILD}`);
  const proc = spawn(bin, ['--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the double did not start:\n${log}`)), 10_000);
    proc.stdout.on('data', (c) => {
      log += c;
      const m = log.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => reject(new Error(`the double exited ${code}:\n${log}`)));
  });
  const admin = async (p, body) => {
    const res = await call(url, p, body === undefined ? {} : { method: 'POST', body });
    assert.ok(res.status < 300, `${p} answered ${res.status}: ${res.text}`);
    return res.json;
  };
  return {
    url,
    ws: `${url.replace('http://', 'ws://')}/ws/chat`,
    admin,
    stats: () => admin('/admin/stats'),
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r));
    },
  };
}

/** The double the last linked server of this test file talks to: `scan` uses it. */
let currentDouble;

/**
 * botlink-server's test build (target/double) on the real link, talking to a WhatsApp double
 * (`double`, or a new one stopped with the server), serving the release app; in a cluster run
 * (BOTLINK_E2E_CLUSTER=1) three such nodes. Resolves to the server's handle with `.double`.
 */
export async function startLinkedServer(flags = [], { double } = {}) {
  const own = double === undefined;
  const theDouble = double ?? await startDouble();
  const previousDouble = currentDouble;
  currentDouble = theDouble;
  const link = ['--whatsapp-url', theDouble.ws];
  let server;
  if (process.env.BOTLINK_E2E_CLUSTER === '1') {
    server = await startCluster([...flags, ...link], { bin: `${DOUBLE_BIN}/botlink-server` });
  } else {
    const bin = `${DOUBLE_BIN}/botlink-server`;
    assert.ok(fs.existsSync(bin), `${bin} is missing: ${DOUBLE_BUILD}`);
    const defaults = [['--addr', '127.0.0.1:0'], ['--db', ':memory:'], ['--static', `${ROOT}dist`]]
      .filter(([flag]) => !flags.includes(flag)).flat();
    server = await spawnServer(bin, [...defaults, ...flags, ...link]);
  }
  const stop = server.stop;
  return {
    ...server,
    double: theDouble,
    stop: async () => {
      await stop();
      if (own) await theDouble.stop();
      // `scan` goes back to the file's main double (a test's own server ends before it).
      if (currentDouble === theDouble) currentDouble = previousDouble;
    },
  };
}

/** Starts this botlink-server binary with exactly `args` (one process, never a cluster). */
export async function spawnServer(bin, args) {
  const dataDir = args.includes(':memory:') ? temporaryDataDir(args) : null;
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (dataDir) proc.once('exit', () => fs.rmSync(dataDir, { recursive: true, force: true }));
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 10_000);
    const onData = (chunk) => {
      log += chunk;
      const m = log.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`server exited ${code}:\n${log}`)));
  });
  proc.stdout.on('data', (c) => { log += c; });
  const api = (path, opts) => call(url, path, opts);
  return {
    url,
    log: () => log,
    api,
    stats: async () => (await api('/api/dev/stats')).json,
    resetStats: async () => { await api('/api/dev/stats/reset', { method: 'POST' }); },
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r));
    },
    /** kill -9: no goodbye to any client. */
    kill: async () => { proc.kill('SIGKILL'); await new Promise((r) => proc.once('exit', r)); },
  };
}

/** Headless Debian Chromium. */
export async function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
  });
}

/** A page that fails the test on any uncaught page error; collects console lines. */
export async function openPage(browser, { width = 1024, height = 800, permissions = [] } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, permissions });
  return watch(await context.newPage());
}

/** Collects a page's console lines and uncaught errors (another tab of a context, too). */
export function watch(page) {
  const consoleLines = [];
  const errors = [];
  page.on('console', (m) => consoleLines.push(m.text()));
  page.on('pageerror', (e) => errors.push(e));
  page.consoleLines = consoleLines;
  page.pageErrors = errors;
  return page;
}

/** The session the app stored. */
export async function sessionOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('botlink.session')));
}

export const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);

/** Waits for the connection status to read `state`. */
export async function waitForState(page, state, timeout = 10_000) {
  await page.locator(`[data-testid="connection-status"][data-state="${state}"]`).waitFor({ timeout });
}

/** Polls `fn` until it returns a truthy value. Real time: a real server and browser answer. */
export async function eventually(what, fn, timeout = 10_000) {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Creates a bot through the wizard and lands on its QR step; returns the bot id. */
export async function createBotThroughWizard(page, baseUrl, name) {
  await page.goto(`${baseUrl}/bots/new`);
  await byTestId(page, 'bot-name-input').fill(name);
  await byTestId(page, 'create-bot').click();
  await page.waitForURL(/\/bots\/[^/]+\/link$/);
  return page.url().split('/').at(-2);
}

/** The double's phone (of `phone`, if given) scans WhatsApp's QR string; resolves to what it
 * linked ({ jid, phone, noise }). */
export async function scan(qr, phone) {
  assert.ok(currentDouble, 'no WhatsApp double started (startLinkedServer)');
  return currentDouble.admin('/admin/scan', phone ? { qr, phone } : { qr });
}

/** The noise key of the device showing this WhatsApp QR (its second field): how the double
 * names a device that has no phone yet. */
export const noiseOf = (qr) => qr.split(',')[1];

export { sleep };

/**
 * The fixture of a test file: one reference server (started with `flags`, linking through a
 * WhatsApp double) and one browser, started before the file's tests and stopped after them. Read
 * them as `env.server` (its double: `env.server.double`), `env.browser`.
 */
export function serverAndBrowser(flags = []) {
  const env = { server: undefined, browser: undefined };
  before(async () => {
    env.server = await startLinkedServer(flags);
    env.browser = await launch();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}

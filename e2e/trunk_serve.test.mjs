// Smoke test of the developer setup: `trunk serve` (debug build) in front of the reference server
// on 127.0.0.1:8000, as scripts/run starts them. Everything goes through trunk's proxy: /api and
// the WebSocket at /socket.io. The server is the test build on the real link, talking to the
// WhatsApp double, whose phone scans.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  startLinkedServer, launch, openPage, byTestId, waitForState, createBotThroughWizard, scan, eventually, sleep,
} from './helpers.mjs';
import { freePort } from './fault_proxy.mjs';

const ROOT = new URL('..', import.meta.url).pathname;
let server, trunk, browser;
after(async () => {
  await browser?.close();
  if (trunk && trunk.exitCode === null) { process.kill(-trunk.pid, 'SIGTERM'); }
  await server?.stop();
});

test('pairing works through trunk serve and its proxy', { timeout: 600_000 }, async () => {
  const busy = await fetch('http://127.0.0.1:8000/api/health').then(() => true, () => false);
  assert.ok(!busy, 'port 8000 is taken (is scripts/run running?): Trunk.toml proxies to it');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  server = await startLinkedServer(['--addr', '127.0.0.1:8000']);
  trunk = spawn('trunk', ['serve', '--offline', '--address', '127.0.0.1', '--port', String(port),
    '--dist', `${ROOT}target/trunk-serve-dist`, '--no-autoreload'], {
    cwd: ROOT,
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, PATH: `${ROOT}node_modules/.bin:${process.env.PATH}` },
  });
  // The first debug build takes a while.
  await eventually('trunk to serve the app', async () => {
    const html = await fetch(base).then((r) => (r.ok ? r.text() : ''), () => '');
    return html.includes('.wasm');
  }, 540_000);

  browser = await launch();
  const page = await openPage(browser);
  await createBotThroughWizard(page, base, 'Trunk bot');
  await server.resetStats();
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan', 20_000);
  await scan(await byTestId(page, 'qr-code').getAttribute('data-qr'));
  await byTestId(page, 'pairing-success').waitFor({ timeout: 20_000 });
  await sleep(300);
  const s = await eventually('the socket to close', async () => { const s = await server.stats(); return s.socketsOpen === 0 && s; });
  assert.equal(s.wsUpgrades, 1, 'one WebSocket, through the proxy');
  assert.deepEqual(page.pageErrors, []);
});

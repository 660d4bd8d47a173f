// Network faults made by the suite itself (a fault-injecting proxy), and a server that vanishes.
// On the real link: the server's test build talks to the WhatsApp double.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import {
  startLinkedServer, startDouble, launch, openPage, sessionOf, byTestId, waitForState, eventually,
  createBotThroughWizard, sleep,
} from './helpers.mjs';
import { startFaultProxy, freePort } from './fault_proxy.mjs';

let browser;
after(async () => { await browser?.close(); });

test('a black-holed link is declared dead, retried a bounded number of times, then "network"; restored, Try again works', async () => {
  browser ??= await launch();
  const server = await startLinkedServer(['--ping-interval-ms', '400', '--ping-timeout-ms', '300']);
  const proxy = await startFaultProxy(Number(new URL(server.url).port));
  try {
    const page = await openPage(browser);
    await createBotThroughWizard(page, proxy.url, 'Black hole bot');
    await byTestId(page, 'generate-qr').click();
    await waitForState(page, 'waiting_for_scan');
    await server.resetStats();
    proxy.blackHole();
    const started = Date.now();
    await waitForState(page, 'retrying', 5_000);
    const detected = Date.now() - started;
    // pingInterval + pingTimeout = 700 ms after the last ping, which came up to 400 ms earlier.
    assert.ok(detected >= 200, `dead link declared after ${detected} ms, not at once`);
    await page.locator('[data-testid="pairing-error"][data-code="network"]').waitFor({ timeout: 60_000 });
    const s = await server.stats();
    assert.equal(s.wsUpgrades, 0, 'no retry reached the server through the black hole');
    // Nothing more happens by itself.
    const lines = page.consoleLines.length;
    await sleep(3_000);
    assert.equal(page.consoleLines.length, lines, 'no further attempt after the final failure');

    proxy.restore();
    await byTestId(page, 'retry').click();
    await waitForState(page, 'waiting_for_scan', 10_000);
    const { userId } = await sessionOf(page);
    await eventually('one open socket', async () => (await server.stats()).perUser[userId]?.open === 1);
    await page.context().close();
  } finally {
    await proxy.close();
    await server.stop();
  }
});

test('the server killed and restarted on the same database: bounded retries, then the same session works', async () => {
  browser ??= await launch();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botlink-e2e-'));
  const db = path.join(dir, 'botlink.db');
  const port = await freePort();
  const flags = ['--addr', `127.0.0.1:${port}`, '--db', db];
  // One WhatsApp across the restart, as in life.
  const double = await startDouble();
  let server = await startLinkedServer(flags, { double });
  try {
    const page = await openPage(browser);
    const botId = await createBotThroughWizard(page, server.url, 'Restart bot');
    await byTestId(page, 'generate-qr').click();
    await waitForState(page, 'waiting_for_scan');
    const before = await sessionOf(page);
    await server.kill();
    await page.locator('[data-testid="pairing-error"][data-code="network"]').waitFor({ timeout: 60_000 });

    server = await startLinkedServer(flags, { double });
    await byTestId(page, 'retry').click();
    await waitForState(page, 'waiting_for_scan', 10_000);
    const afterRestart = await sessionOf(page);
    assert.equal(afterRestart.userId, before.userId, 'the same user');
    const { status } = await server.api(`/api/bots/${botId}`, { token: afterRestart.token });
    assert.equal(status, 200, 'the bot survived the restart');
    await page.context().close();
  } finally {
    await server.stop();
    await double.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

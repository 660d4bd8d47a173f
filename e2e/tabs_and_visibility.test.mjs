// One tab pairs (Web Locks), a hidden tab rests, and the network coming and going (issue #7).
// Two pages of one browser context are two tabs: they share localStorage (one user) and locks.
// On the real link: the server's test build talks to the WhatsApp double, whose phone scans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowser, openPage, watch, sessionOf, byTestId, waitForState, eventually, createBotThroughWizard, sleep,
  scan,
} from './helpers.mjs';

const env = serverAndBrowser();

const stateOf = (page) => page.locator('[data-testid="connection-status"]').getAttribute('data-state');

/** Two tabs of one browser on one bot's QR; `how` is 'Web Locks' or 'BroadcastChannel'. */
async function twoTabs(how) {
  const tabA = await openPage(env.browser);
  if (how === 'BroadcastChannel') {
    // As in an insecure context (a LAN address over plain http): no navigator.locks.
    await tabA.context().addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'locks', { configurable: true, get: () => undefined });
    });
  }
  const botId = await createBotThroughWizard(tabA, env.server.url, 'Two-tab bot');
  await byTestId(tabA, 'generate-qr').click();
  await waitForState(tabA, 'waiting_for_scan');
  const { userId } = await sessionOf(tabA);
  await env.server.resetStats();

  const tabB = watch(await tabA.context().newPage());
  await tabB.goto(`${env.server.url}/bots/${botId}/link?debug=1`);
  await waitForState(tabB, 'other_tab');
  assert.match(await byTestId(tabB, 'diagnostics').innerText(), new RegExp(`tabs coordinated by: ${how}`));
  assert.match(await tabB.locator('[data-testid="connection-status"]').innerText(), /another tab/);
  assert.equal(await byTestId(tabB, 'qr-code').count(), 0);
  assert.equal(await byTestId(tabB, 'generate-qr').innerText(), 'Generate QR', 'no "QR code on screen" without one');
  await sleep(1_500);
  let s = await env.server.stats();
  assert.equal(s.wsUpgrades, 0, 'the second tab opened no socket');
  assert.equal(await stateOf(tabA), 'waiting_for_scan', 'the first tab is undisturbed');

  await byTestId(tabB, 'take-over').click();
  await waitForState(tabB, 'waiting_for_scan');
  await waitForState(tabA, 'other_tab');
  s = await eventually('one socket, in tab B', async () => {
    const st = await env.server.stats();
    return st.perUser[userId].open === 1 && st;
  });
  assert.equal(s.wsUpgrades, 1, 'one new socket, for tab B');
  assert.equal(s.socketsReplaced, 0, 'tab A let go before tab B connected: no replacement');
  assert.equal(await byTestId(tabA, 'take-over').count(), 1, 'tab A can take it back');

  await scan(await byTestId(tabB, 'qr-code').getAttribute('data-qr'));
  await byTestId(tabB, 'pairing-success').waitFor({ timeout: 20_000 });
  await sleep(1_000);
  assert.equal((await env.server.stats()).wsUpgrades, 1, 'tab A did not reopen after the link');
  assert.deepEqual([...tabA.pageErrors, ...tabB.pageErrors], []);
  await tabA.context().close();
}

test('a second tab showing the same QR opens no socket; "Pair here instead" takes over cleanly (Web Locks)',
  () => twoTabs('Web Locks'));

test('the same where Web Locks are missing: the tabs ask each other over a BroadcastChannel',
  () => twoTabs('BroadcastChannel'));

test('hidden for 30 s: the socket closes and rests; visible again: GET the bot, then reopen', async () => {
  const page = await openPage(env.browser);
  const botId = await createBotThroughWizard(page, env.server.url, 'Background bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  const { userId } = await sessionOf(page);
  const requests = [];
  page.on('request', (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  page.on('websocket', () => requests.push('WebSocket'));

  // The page goes to the background (as a tab switch reports it).
  const setHidden = (hidden) => page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
  await setHidden(true);
  await sleep(25_000);
  assert.equal(await stateOf(page), 'waiting_for_scan', 'not before 30 s');
  await waitForState(page, 'paused', 8_000);
  await eventually('the socket to close', async () => (await env.server.stats()).perUser[userId].open === 0);
  assert.equal(await byTestId(page, 'qr-code').count(), 0, 'no stale QR while resting');

  await setHidden(false);
  await waitForState(page, 'waiting_for_scan', 10_000);
  const getBot = requests.indexOf(`GET /api/bots/${botId}`);
  const socket = requests.indexOf('WebSocket');
  assert.ok(getBot >= 0, `the bot was fetched first: ${requests}`);
  assert.ok(socket > getBot, `the socket opened after the resync: ${requests}`);
  const s = await env.server.stats();
  assert.equal(s.perUser[userId].open, 1);
  assert.equal(s.perUser[userId].opened, 2, 'one socket before the rest, one after');
  await page.context().close();
});

test('offline: the socket is given up at once; online: it comes back', async () => {
  const page = await openPage(env.browser);
  await createBotThroughWizard(page, env.server.url, 'Train bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  const { userId } = await sessionOf(page);
  await page.context().setOffline(true);
  // Not after the ping window (45 s): the offline event says it now.
  await waitForState(page, 'retrying', 2_000);
  await sleep(1_500);
  await page.context().setOffline(false);
  await waitForState(page, 'waiting_for_scan', 10_000);
  await eventually('one socket open', async () => (await env.server.stats()).perUser[userId].open === 1);
  assert.equal(await byTestId(page, 'pairing-error').count(), 0);
  await page.context().close();
});

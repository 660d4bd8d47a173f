// The pairing journey as a person takes it, on the real link: the server's test build talks to
// the WhatsApp double (its phone scans the QR the page shows), with the
// server's counters and the double's as the witnesses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowser, openPage, sessionOf, byTestId, waitForState, eventually, createBotThroughWizard, scan, sleep, screenshot,
} from './helpers.mjs';

const env = serverAndBrowser();

test('happy path: wizard, QR, scan, success — one socket, closed afterwards', async () => {
  const page = await openPage(env.browser, { width: 390, height: 844 });
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));
  page.on('websocket', (ws) => urls.push(ws.url()));
  await page.goto(env.server.url);
  await page.getByText('No bots yet').waitFor();
  const botId = await createBotThroughWizard(page, env.server.url, 'Support bot');
  await env.server.resetStats();

  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  const qr = await byTestId(page, 'qr-code').getAttribute('data-qr');
  const { token, userId } = await sessionOf(page);
  const bot = (await env.server.api(`/api/bots/${botId}`, { token })).json;
  assert.equal(qr, bot.pairing.qr, "the QR is the server's current one");
  assert.equal(qr.split(',').length, 5, `WhatsApp's own QR string: ${qr}`);
  assert.match(await byTestId(page, 'qr-attempt').innerText(), /Code 1 of 6/);
  assert.match(await page.locator('[data-testid="qr-code"] svg').innerHTML(), /path|rect/);
  await screenshot(page, 'screenshot-wizard-qr');

  await scan(qr, '+1 555 010 0100');
  await byTestId(page, 'pairing-success').waitFor({ timeout: 20_000 });
  assert.match(await byTestId(page, 'pairing-success').innerText(), /\+1555/);
  // Regression: an enabled "Generate QR" stayed on the linked step and did nothing.
  assert.equal(await byTestId(page, 'generate-qr').count(), 0, 'no button that does nothing');
  const stats = await eventually('the socket to close', async () => {
    const s = await env.server.stats();
    return s.perUser[userId]?.open === 0 && s;
  });
  assert.equal(stats.perUser[userId].opened, 1, 'exactly one socket for the QR display');
  assert.equal(stats.socketsReplaced, 0);
  assert.equal(stats.wsUpgrades, 1, 'one WebSocket upgrade in all');

  await page.getByRole('link', { name: 'Go to dashboard' }).click();
  await page.locator(`[data-testid="bot-row"][data-bot-id="${botId}"][data-status="connected"]`).waitFor();
  await page.setViewportSize({ width: 1024, height: 640 });
  await screenshot(page, 'screenshot-dashboard');
  await sleep(600);
  assert.equal((await env.server.stats()).wsUpgrades, 1, 'the dashboard opens no socket');
  // The token travels in headers and the CONNECT payload only: never a URL, a console line or a log line.
  assert.ok(urls.some((u) => u.includes('/socket.io/')), 'the socket URL was seen');
  for (const u of urls) assert.ok(!u.includes(token), `token in a URL: ${u}`);
  for (const line of page.consoleLines) assert.ok(!line.includes(token), `token in the console: ${line}`);
  assert.ok(!env.server.log().includes(token), 'token in the server log');
  assert.deepEqual(page.pageErrors, []);
  await page.context().close();
});

test('debounce: the socket opens no sooner than 500 ms after the QR appears', async () => {
  const page = await openPage(env.browser);
  // Measured inside the page: when the QR enters the DOM, and when a WebSocket is constructed.
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    window.WebSocket = function (...args) { window.__wsAt ??= performance.now(); return new Native(...args); };
    window.WebSocket.prototype = Native.prototype;
    Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
    new MutationObserver(() => {
      if (!window.__qrAt && document.querySelector('[data-testid="qr-code"]')) window.__qrAt = performance.now();
    }).observe(document, { childList: true, subtree: true });
  });
  await createBotThroughWizard(page, env.server.url, 'Debounce bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  const { qrAt, wsAt } = await page.evaluate(() => ({ qrAt: window.__qrAt, wsAt: window.__wsAt }));
  const gap = wsAt - qrAt;
  // The debounce counts from the moment the page reports the QR on screen (timer resolution aside).
  assert.ok(gap >= 495, `the socket opened ${gap.toFixed(1)} ms after the QR appeared`);
  assert.ok(gap < 1_000, `and not much later: ${gap.toFixed(1)} ms`);
  console.log(`debounce: QR shown → socket opened in ${gap.toFixed(1)} ms`);
  await page.context().close();
});

test('storm: 50 clicks, 10 route switches, 20 hide/show — at most one socket per display, none replaced', async () => {
  const page = await openPage(env.browser);
  const botId = await createBotThroughWizard(page, env.server.url, 'Storm bot');
  await env.server.resetStats();
  // 50 clicks in about a second (the button is disabled while the QR shows: clicks go through JS).
  await page.evaluate(async () => {
    for (let i = 0; i < 50; i++) {
      document.querySelector('[data-testid="generate-qr"]')?.click();
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  await waitForState(page, 'waiting_for_scan');
  let displays = 1;
  // 10 route switches: dashboard and back (a pairing bot's page shows its QR again at once).
  for (let i = 0; i < 10; i++) {
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page.locator('[data-testid="bot-row"]').first().waitFor();
    await page.goBack();
    await byTestId(page, 'qr-code').waitFor();
    displays++;
  }
  // 20 hide/show toggles.
  for (let i = 0; i < 20; i++) {
    await byTestId(page, 'hide-qr').click();
    await byTestId(page, 'generate-qr').click();
    await byTestId(page, 'qr-code').waitFor();
    displays++;
  }
  await waitForState(page, 'waiting_for_scan');
  const { userId } = await sessionOf(page);
  const s = await env.server.stats();
  assert.equal(s.socketsReplaced, 0, 'no socket ever replaced another');
  assert.ok(s.wsUpgrades <= displays, `${s.wsUpgrades} sockets for ${displays} displays`);
  assert.equal(s.perUser[userId].open, 1, 'one socket open at the end');
  assert.equal(s.wsUpgrades, s.perUser[userId].opened, 'every socket opened was accepted');
  console.log(`storm: ${s.wsUpgrades} sockets for ${displays} QR displays`);
  void botId;
  await page.context().close();
});

test('440 conflict: the error says so and no socket opens for 10 s', async () => {
  const page = await openPage(env.browser);
  const botId = await createBotThroughWizard(page, env.server.url, 'Conflict bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  const { token } = await sessionOf(page);
  await env.server.resetStats();
  // A 440 on the QR step, as a Node backend sends it (WhatsApp itself replaces only a session
  // that is logged in: a linked bot's 440 is e2e/whatsapp_double.test.mjs's).
  await env.server.api(`/api/dev/bots/${botId}/emit`, {
    method: 'POST',
    token,
    body: {
      event: 'whatsapp_connection_event',
      data: { type: 'connection_failed', botId, code: 440, reason: 'replaced' },
    },
  });
  await page.locator('[data-testid="pairing-error"][data-code="440"]').waitFor();
  assert.match(await byTestId(page, 'pairing-error').innerText(), /WhatsApp Web elsewhere/);
  await sleep(10_000);
  const s = await env.server.stats();
  const { userId } = await sessionOf(page);
  assert.equal(s.wsUpgrades, 0, 'no socket after a 440');
  assert.equal(s.perUser[userId]?.open ?? 0, 0, `this user's socket is closed: ${JSON.stringify(s)}`);
  await page.context().close();
});

test('reload with the QR displayed: still one socket for the user', async () => {
  const page = await openPage(env.browser);
  await createBotThroughWizard(page, env.server.url, 'Reload bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  const first = await byTestId(page, 'qr-code').getAttribute('data-qr');
  await page.reload();
  await waitForState(page, 'waiting_for_scan');
  assert.equal(await byTestId(page, 'qr-code').getAttribute('data-qr'), first, 'the same pairing, the same QR');
  const { userId } = await sessionOf(page);
  await eventually('one open socket', async () => (await env.server.stats()).perUser[userId]?.open === 1);
  await page.context().close();
});

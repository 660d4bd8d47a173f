// Token expiry and revocation while a QR shows; QR rotation and expiry; names shown as text. On
// the real link: the server's test build talks to the WhatsApp double; a retryable failure a Node
// backend sends (408) comes through the contract-level emit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowser, startLinkedServer, openPage, sessionOf, byTestId, waitForState, eventually,
  createBotThroughWizard, sleep,
} from './helpers.mjs';

const env = serverAndBrowser();

/** `connection_failed` 408 to the bot's sockets, as a Baileys backend sends it: the app retries. */
async function timedOut(server, botId, token) {
  const data = { type: 'connection_failed', botId, code: 408, reason: 'timed out' };
  const res = await server.api(`/api/dev/bots/${botId}/emit`, {
    method: 'POST', token, body: { event: 'whatsapp_connection_event', data },
  });
  assert.equal(res.status, 204, res.text);
}

/** A second session of the same user, to drive the dev calls while the app's token is spoilt. */
async function operator(userId) {
  return (await env.server.api('/api/auth/session', { method: 'POST', body: { userId } })).json.token;
}

/** A bot on its QR step, with the QR shown and the socket open. */
async function showingQr(name, server = env.server) {
  const page = await openPage(env.browser);
  const botId = await createBotThroughWizard(page, server.url, name);
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  return { page, botId, session: await sessionOf(page) };
}

test('token expiry while the QR shows: refresh and reconnect', async () => {
  const { page, botId, session } = await showingQr('Expiry bot');
  await env.server.api('/api/dev/tokens/expire', { method: 'POST', token: session.token });
  // A retryable failure makes the app reconnect; its resync meets the expired token.
  const op = await operator(session.userId);
  const opened = (await env.server.stats()).perUser[session.userId].opened;
  await timedOut(env.server, botId, op);
  // The link comes back: one more accepted socket, with a refreshed token. (The "retrying" state
  // in between may last only milliseconds, so it is not waited for.)
  await eventually('the reconnect', async () => (await env.server.stats()).perUser[session.userId].opened === opened + 1, 15_000);
  await waitForState(page, 'waiting_for_scan', 15_000);
  const fresh = await sessionOf(page);
  assert.notEqual(fresh.token, session.token, 'the token was refreshed');
  assert.equal(fresh.userId, session.userId);
  assert.equal(await byTestId(page, 'pairing-error').count(), 0);
  await page.context().close();
});

test('tokens revoked: "Your session ended", no attempt for 10 s, then Sign in again pairs again', async () => {
  const { page, botId, session } = await showingQr('Revoked bot');
  await env.server.api('/api/dev/tokens/revoke', { method: 'POST', token: session.token });
  // A retryable failure makes the app reconnect; its resync meets the revoked token.
  const op = await operator(session.userId);
  await timedOut(env.server, botId, op);
  await env.server.api('/api/dev/tokens/revoke', { method: 'POST', token: op });

  await page.locator('[data-testid="pairing-error"][data-code="unauthorized"]').waitFor({ timeout: 15_000 });
  assert.match(await byTestId(page, 'pairing-error').innerText(), /Your session ended/);
  assert.equal(await byTestId(page, 'retry').innerText(), 'Sign in again');
  const upgrades = (await env.server.stats()).wsUpgrades;
  await sleep(10_000);
  assert.equal((await env.server.stats()).wsUpgrades, upgrades, 'no attempt during the next 10 s');

  await byTestId(page, 'retry').click();
  await waitForState(page, 'waiting_for_scan', 10_000);
  const signedIn = await sessionOf(page);
  assert.equal(signedIn.userId, session.userId, 'signed in again as the same user');
  await page.context().close();
});

test('QR codes rotate in place, then "QR expired" and a button to start again; no socket open', async () => {
  // WhatsApp's own rhythm (six codes: 60 s, then 20 s each), its clocks 40 times faster.
  const fast = await startLinkedServer(['--whatsapp-time-divisor', '40']);
  try {
    const { page, session } = await showingQr('Rotation bot', fast);
    const seen = new Set([await byTestId(page, 'qr-code').getAttribute('data-qr')]);
    for (let n = 2; n <= 6; n++) {
      await eventually(`code ${n}`, async () => (await byTestId(page, 'qr-attempt').innerText()).includes(`Code ${n} of 6`), 5_000);
      seen.add(await byTestId(page, 'qr-code').getAttribute('data-qr'));
    }
    assert.equal(seen.size, 6, 'each qr_updated replaced the code');
    await page.locator('[data-testid="pairing-error"][data-code="qr_expired"]').waitFor({ timeout: 5_000 });
    assert.match(await byTestId(page, 'pairing-error').innerText(), /QR expired/);
    assert.equal(await byTestId(page, 'retry').innerText(), 'Generate new QR');
    assert.equal(await byTestId(page, 'qr-code').count(), 0, 'no stale QR left on screen');
    await eventually('the socket to close', async () => (await fast.stats()).perUser[session.userId]?.open === 0);
    await byTestId(page, 'retry').click();
    await waitForState(page, 'waiting_for_scan');
    assert.match(await byTestId(page, 'qr-attempt').innerText(), /Code 1 of 6/);
    await page.context().close();
  } finally {
    await fast.stop();
  }
});

test('bot names are shown as text, never as markup', async () => {
  const page = await openPage(env.browser);
  const name = '<img src=x onerror=alert(1)>';
  await createBotThroughWizard(page, env.server.url, name);
  await page.goto(env.server.url);
  const title = page.locator('.bot-title', { hasText: name });
  await title.first().waitFor();
  assert.equal(await page.locator('.bot-list img').count(), 0);
  assert.deepEqual(page.pageErrors, []);
  await page.context().close();
});

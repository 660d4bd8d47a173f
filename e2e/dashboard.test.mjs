// The dashboard: Reconnect shows a QR in place through the same owner; list refreshes do not
// disturb it; live status; unlink and delete ask first. On the real link: the server's test build
// talks to the WhatsApp double, whose phone scans the QR.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowser, openPage, sessionOf, byTestId, waitForState, eventually, scan, sleep,
} from './helpers.mjs';

const env = serverAndBrowser();

const row = (page, id) => page.locator(`[data-testid="bot-row"][data-bot-id="${id}"]`);

test('Reconnect shows the QR in the row; a list refresh does not close it; the row turns connected', async () => {
  const page = await openPage(env.browser);
  await page.goto(env.server.url);
  await page.getByText('No bots yet').waitFor();
  const { token } = await eventually('a session', () => sessionOf(page));
  const { json: bot } = await env.server.api('/api/bots', { method: 'POST', token, body: { name: 'Dash bot' } });
  await page.evaluate(() => window.dispatchEvent(new Event('focus')));
  await row(page, bot.id).waitFor();
  assert.equal(await row(page, bot.id).getAttribute('data-status'), 'created');
  await sleep(600);
  assert.equal((await env.server.stats()).wsUpgrades, 0, 'the dashboard alone opens no socket');

  await row(page, bot.id).locator('[data-testid="generate-qr"]').click();
  await waitForState(page, 'waiting_for_scan');
  const link = await byTestId(page, 'qr-code').getAttribute('data-qr');
  // A refresh of the list (the page regains focus) while the QR shows.
  for (let i = 0; i < 3; i++) {
    await page.evaluate(() => window.dispatchEvent(new Event('focus')));
    await sleep(200);
  }
  await waitForState(page, 'waiting_for_scan');
  assert.equal(await byTestId(page, 'qr-code').getAttribute('data-qr'), link, 'the same QR, still shown');
  assert.equal((await env.server.stats()).wsUpgrades, 1, 'the refreshes did not reopen the socket');

  await scan(link);
  await byTestId(page, 'pairing-success').waitFor({ timeout: 20_000 });
  await page.locator(`[data-testid="bot-row"][data-bot-id="${bot.id}"][data-status="connected"]`).waitFor();
  await page.context().close();
});

test('unlink and delete ask first, then act', async () => {
  const page = await openPage(env.browser);
  await page.goto(env.server.url);
  await page.getByRole('heading', { name: 'Your bots' }).waitFor();
  const t = (await eventually('a session', () => sessionOf(page))).token;
  const { json: bot } = await env.server.api('/api/bots', { method: 'POST', token: t, body: { name: 'Doomed bot' } });
  const { json: pairing } = await env.server.api(`/api/bots/${bot.id}/qr`, { method: 'POST', token: t });
  await scan(pairing.qr);
  await eventually('linked', async () => (await env.server.api(`/api/bots/${bot.id}`, { token: t })).json.status === 'connected', 20_000);
  await page.reload();
  await row(page, bot.id).locator('[data-testid="unlink-bot"]').click();
  await byTestId(page, 'confirm-action').waitFor();
  assert.equal((await env.server.api(`/api/bots/${bot.id}`, { token: t })).json.status, 'connected', 'nothing happens before confirming');
  await byTestId(page, 'confirm-action').click();
  await page.locator(`[data-testid="bot-row"][data-bot-id="${bot.id}"][data-status="logged_out"]`).waitFor();
  const { totals } = await env.server.double.stats();
  assert.ok(totals.mostOpenAtOnce <= 1, `a device had two connections at once: ${JSON.stringify(totals)}`);

  await row(page, bot.id).locator('[data-testid="delete-bot"]').click();
  await page.getByRole('button', { name: 'Keep' }).click();
  assert.equal(await row(page, bot.id).count(), 1, 'Keep keeps it');
  await row(page, bot.id).locator('[data-testid="delete-bot"]').click();
  await byTestId(page, 'confirm-action').click();
  await row(page, bot.id).waitFor({ state: 'detached' });
  assert.equal((await env.server.api(`/api/bots/${bot.id}`, { token: t })).status, 404);
  await page.context().close();
});

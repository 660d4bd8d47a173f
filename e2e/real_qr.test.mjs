// The app with the real WhatsApp link: the server's test build talks to the WhatsApp double.
// WhatsApp's QR codes are no links, and a bot carries why it is in its status (statusReason).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowser, openPage, sessionOf, byTestId, waitForState, eventually, createBotThroughWizard, scan,
} from './helpers.mjs';

const env = serverAndBrowser();

test("WhatsApp's QR is no link: the app says what to do on the phone instead of offering Copy link", async () => {
  const page = await openPage(env.browser);
  await createBotThroughWizard(page, env.server.url, 'Real-QR bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  const qr = await byTestId(page, 'qr-code').getAttribute('data-qr');
  assert.match(qr, /^2@[^,]+,/, 'the QR string is drawn unchanged');
  const instructions = byTestId(page, 'qr-instructions');
  await instructions.waitFor();
  assert.match(await instructions.innerText(), /Linked devices/);
  assert.equal(await byTestId(page, 'copy-link').count(), 0, 'no "Copy link" of a non-link');
  await scan(qr);
  await byTestId(page, 'pairing-success').waitFor({ timeout: 20_000 });
  await page.context().close();
});

test('a failure that happened with no socket open is explained on the dashboard (statusReason)', async () => {
  const page = await openPage(env.browser);
  await page.goto(env.server.url);
  await page.getByRole('heading', { name: 'Your bots' }).waitFor();
  const { token } = await eventually('a session', () => sessionOf(page));
  const { json: bot } = await env.server.api('/api/bots', { method: 'POST', token, body: { name: 'Removed bot' } });
  const { json: pairing } = await env.server.api(`/api/bots/${bot.id}/qr`, { method: 'POST', token });
  const linked = await scan(pairing.qr);
  const status = async () => (await env.server.api(`/api/bots/${bot.id}`, { token })).json.status;
  await eventually('linked', async () => (await status()) === 'connected', 20_000);
  // The phone removes the device from Linked devices while no page has a socket open.
  await env.server.double.admin('/admin/devices/remove', { jid: linked.jid });
  await eventually('logged out', async () => (await status()) === 'logged_out', 10_000);
  await page.reload();
  const row = page.locator(`[data-testid="bot-row"][data-bot-id="${bot.id}"]`);
  await row.locator('[data-testid="status-reason"]').waitFor();
  assert.equal(await row.getAttribute('data-status'), 'logged_out');
  assert.match(await row.locator('[data-testid="status-reason"]').innerText(), /removed from Linked devices/);
  await page.context().close();
});

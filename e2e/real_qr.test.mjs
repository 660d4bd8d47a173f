// The app as it is with the real WhatsApp link, offline: the simulator hands out QR codes shaped
// like WhatsApp's own (`--qr-style whatsapp`), which are no links, and bots carry a statusReason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowser, openPage, sessionOf, byTestId, waitForState, eventually, createBotThroughWizard,
} from './helpers.mjs';

const env = serverAndBrowser(['--qr-style', 'whatsapp', '--restart-ms', '300']);

test("WhatsApp's QR is no link: the app says what to do on the phone instead of offering Copy link", async () => {
  const page = await openPage(env.browser);
  await createBotThroughWizard(page, env.server.url, 'Real-QR bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  const qr = await byTestId(page, 'qr-code').getAttribute('data-qr');
  assert.match(qr, /^2@[0-9a-f]+,/, 'the QR string is drawn unchanged');
  const instructions = byTestId(page, 'qr-instructions');
  await instructions.waitFor();
  assert.match(await instructions.innerText(), /Linked devices/);
  assert.equal(await byTestId(page, 'copy-link').count(), 0, 'no "Copy link" of a non-link');
  // The "scan": the reference server still links by the QR's ref.
  const ref = qr.slice(2).split(',')[0];
  const res = await fetch(`${env.server.url}/link/${ref}`, { method: 'POST' });
  assert.equal(res.status, 200);
  await byTestId(page, 'pairing-success').waitFor();
  await page.context().close();
});

test('a failure that happened with no socket open is explained on the dashboard (statusReason)', async () => {
  const page = await openPage(env.browser);
  await page.goto(env.server.url);
  await page.getByRole('heading', { name: 'Your bots' }).waitFor();
  const { token } = await eventually('a session', () => sessionOf(page));
  const { json: bot } = await env.server.api('/api/bots', { method: 'POST', token, body: { name: 'Banned bot' } });
  const failed = await env.server.api(`/api/dev/bots/${bot.id}/fail`, { method: 'POST', token, body: { code: 403 } });
  assert.equal(failed.status, 204);
  await page.reload();
  const row = page.locator(`[data-testid="bot-row"][data-bot-id="${bot.id}"]`);
  await row.locator('[data-testid="status-reason"]').waitFor();
  assert.equal(await row.getAttribute('data-status'), 'disconnected');
  assert.equal(await row.locator('[data-testid="status-reason"]').innerText(), 'forbidden');
  await page.context().close();
});

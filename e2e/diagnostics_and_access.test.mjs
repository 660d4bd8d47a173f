// The diagnostics panel, and pairing by keyboard and screen reader (issue #7). On the real link:
// the server's test build talks to the WhatsApp double, whose phone scans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  serverAndBrowser, openPage, sessionOf, byTestId, waitForState, createBotThroughWizard, scan, screenshot,
} from './helpers.mjs';

const env = serverAndBrowser();

test('?debug=1 opens the diagnostics: timeline, counters, codes, time to scan — and no token', async () => {
  const page = await openPage(env.browser);
  const botId = await createBotThroughWizard(page, env.server.url, 'Telemetry bot');
  await page.goto(`${env.server.url}/bots/${botId}/link?debug=1`);
  const panel = byTestId(page, 'diagnostics');
  await panel.waitFor();
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  await scan(await byTestId(page, 'qr-code').getAttribute('data-qr'));
  await byTestId(page, 'pairing-success').waitFor({ timeout: 20_000 });

  const text = await panel.innerText();
  for (const row of ['idle → connecting', 'connecting → debouncing', 'debouncing → connecting',
    'connecting → waiting_for_scan', 'waiting_for_scan → finishing', 'finishing → linked']) {
    assert.ok(text.includes(row), `timeline row "${row}" in:\n${text}`);
  }
  assert.equal(await byTestId(page, 'diag-attempts').innerText(), '1');
  assert.equal(await byTestId(page, 'diag-opens').innerText(), '1');
  assert.equal(await byTestId(page, 'diag-closes').innerText(), '1');
  assert.match(await byTestId(page, 'diag-time-to-scan').innerText(), /^\d+\.\d{3} s$/);
  assert.equal(await byTestId(page, 'diagnostics-state').innerText(), 'linked');
  const { token } = await sessionOf(page);
  assert.ok(!text.includes(token), 'no token in the diagnostics');
  await screenshot(page, 'screenshot-diagnostics');
  await page.context().close();
});

test('the footer opens and closes the diagnostics by keyboard', async () => {
  const page = await openPage(env.browser);
  await page.goto(env.server.url);
  const toggle = page.getByRole('button', { name: 'Diagnostics' });
  await toggle.focus();
  await page.keyboard.press('Enter');
  await byTestId(page, 'diagnostics').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Hide diagnostics' }).getAttribute('aria-expanded'), 'true');
  await page.keyboard.press('Enter');
  await byTestId(page, 'diagnostics').waitFor({ state: 'detached' });
  await page.context().close();
});

test('by keyboard alone: generate, keep focus through state changes, read what to do, cancel', async () => {
  const page = await openPage(env.browser);
  await createBotThroughWizard(page, env.server.url, 'Keyboard bot');
  await byTestId(page, 'generate-qr').focus();
  await page.keyboard.press('Enter');
  const status = byTestId(page, 'connection-status');
  await status.waitFor();
  // One live region that stays: screen readers announce its changes.
  assert.equal(await status.getAttribute('aria-live'), 'polite');
  await status.evaluate((el) => { el.dataset.marked = 'yes'; });
  await byTestId(page, 'qr-code').waitFor();
  // Focus on Cancel while the state moves on: it must survive the change.
  await byTestId(page, 'hide-qr').focus();
  await waitForState(page, 'waiting_for_scan');
  assert.equal(await status.getAttribute('data-marked'), 'yes', 'the same live region, not a new one');
  assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'hide-qr', 'focus kept');

  // WhatsApp's QR holds keys, not a link: nothing to open or copy; the page says what to do,
  // and the image has a name.
  assert.match(await byTestId(page, 'qr-instructions').innerText(), /Linked devices/);
  assert.equal(await byTestId(page, 'copy-link').count(), 0);
  assert.match(await page.locator('[data-testid="qr-code"] [role="img"]').getAttribute('aria-label'), /QR code/);

  await byTestId(page, 'hide-qr').focus();
  await page.keyboard.press('Enter');
  await byTestId(page, 'qr-code').waitFor({ state: 'detached' });
  assert.deepEqual(page.pageErrors, []);
  await page.context().close();
});

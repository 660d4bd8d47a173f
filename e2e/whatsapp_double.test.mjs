// The app on the real link, end to end and at real speed: the release app in headless Chromium,
// a test build of botlink-server (target/double, `--features whatsapp-double`) whose real
// whatsapp-rust client talks to the WhatsApp double (crates/wa-double), and the double's phone
// driven through its admin API from what the page shows (the QR string, the pairing code). The
// double is the witness: no device ever has two connections open at once.
// One server process, no cluster: scripts/test runs this file, scripts/cluster-test's run of
// the suite against a cluster leaves it out (the real link in a cluster: server/tests/cluster.rs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startDouble, startLinkedServer, launch, openPage, sessionOf, byTestId, waitForState, eventually,
  createBotThroughWizard,
} from './helpers.mjs';
import { call } from './cluster.mjs';

const env = { double: undefined, server: undefined, browser: undefined };
before(async () => {
  env.double = await startDouble();
  env.server = await startLinkedServer([], { double: env.double });
  env.browser = await launch();
});
after(async () => {
  await env.browser?.close();
  await env.server?.stop();
  await env.double?.stop();
});

/** The rule this project exists for, as WhatsApp saw it. */
async function assertNeverTwoSessions(double) {
  const stats = await double.stats();
  assert.ok(stats.totals.mostOpenAtOnce <= 1, `a device had two connections at once: ${JSON.stringify(stats)}`);
}

/** Waits until the user's app has no socket open at the server. */
async function noSocketLeft(server, userId) {
  return eventually('the socket to close', async () => {
    const s = await server.stats();
    return (s.perUser[userId]?.open ?? 0) === 0 && s;
  });
}

/** A bot linked through the API and the double's phone (no page); resolves to { bot, linked, token }. */
async function linkedBot(page, server, double, name) {
  await page.goto(server.url);
  await page.getByRole('heading', { name: 'Your bots' }).waitFor();
  const { token } = await eventually('a session', () => sessionOf(page));
  const { json: bot } = await server.api('/api/bots', { method: 'POST', token, body: { name } });
  const { json: pairing } = await server.api(`/api/bots/${bot.id}/qr`, { method: 'POST', token });
  const linked = await double.admin('/admin/scan', { qr: pairing.qr });
  await eventually('the bot connected', async () =>
    (await server.api(`/api/bots/${bot.id}`, { token })).json.status === 'connected');
  return { bot, linked, token };
}

const row = (page, botId) => page.locator(`[data-testid="bot-row"][data-bot-id="${botId}"]`);

test("link by QR: the page's QR, scanned by the phone, links the bot; one socket, closed after", async () => {
  const page = await openPage(env.browser, { width: 390, height: 844 });
  const botId = await createBotThroughWizard(page, env.server.url, 'QR bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  const qr = await byTestId(page, 'qr-code').getAttribute('data-qr');
  assert.equal(qr.split(',').length, 5, `WhatsApp's own QR string: ${qr}`);
  assert.match(await byTestId(page, 'qr-attempt').innerText(), /Code 1 of 6/);
  await byTestId(page, 'qr-instructions').waitFor();
  const linked = await env.double.admin('/admin/scan', { qr, phone: '+1 555 010 0600' });
  await byTestId(page, 'pairing-success').waitFor({ timeout: 20_000 });
  assert.match(await byTestId(page, 'pairing-success').innerText(), /\+15550100600/);
  const { userId } = await sessionOf(page);
  const stats = await noSocketLeft(env.server, userId);
  assert.equal(stats.perUser[userId].opened, 1, 'exactly one socket for the QR display');
  await page.getByRole('link', { name: 'Go to dashboard' }).click();
  await page.locator(`[data-testid="bot-row"][data-bot-id="${botId}"][data-status="connected"]`).waitFor();
  assert.equal(linked.phone, '+15550100600');
  await assertNeverTwoSessions(env.double);
  assert.deepEqual(page.pageErrors, []);
  await page.context().close();
});

test('link by pairing code: the code the page shows, typed on the phone, links the bot', async () => {
  const page = await openPage(env.browser, { width: 390, height: 844 });
  await createBotThroughWizard(page, env.server.url, 'Code bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  await page.getByLabel("The phone's WhatsApp number, with its country code").fill('+1 555 010 0700');
  await byTestId(page, 'pairing-code-request').click();
  const codeBox = byTestId(page, 'pairing-code');
  await codeBox.waitFor({ timeout: 15_000 });
  const code = await codeBox.inputValue();
  assert.match(code, /^[A-Z0-9]{4}-[A-Z0-9]{4}$/, `shown as XXXX-XXXX: ${code}`);
  await env.double.admin('/admin/code', { phone: '+15550100700', code });
  await byTestId(page, 'pairing-success').waitFor({ timeout: 20_000 });
  assert.match(await byTestId(page, 'pairing-success').innerText(), /\+15550100700/);
  const { userId } = await sessionOf(page);
  await noSocketLeft(env.server, userId);
  await assertNeverTwoSessions(env.double);
  assert.deepEqual(page.pageErrors, []);
  await page.context().close();
});

test("a contact's messages raise the dashboard's count", async () => {
  const page = await openPage(env.browser);
  const { bot, linked, token } = await linkedBot(page, env.server, env.double, 'Inbox bot');
  for (const text of ['hello', 'still there?']) {
    await eventually('the message delivered', async () =>
      (await call(env.double.url, '/admin/devices/message', { method: 'POST', body: { jid: linked.jid, text } })).status === 200);
  }
  await eventually('the count stored', async () =>
    (await env.server.api(`/api/bots/${bot.id}`, { token })).json.messages === 2);
  await page.reload();
  const messages = row(page, bot.id).locator('dt:has-text("Messages") + dd');
  await eventually('the count shown', async () => (await messages.innerText()) === '2');
  await assertNeverTwoSessions(env.double);
  await page.context().close();
});

test('a second session (440) shows its end state on the dashboard, with no socket left', async () => {
  const page = await openPage(env.browser);
  const { bot, linked } = await linkedBot(page, env.server, env.double, 'Replaced bot');
  await env.double.admin('/admin/devices/fail', { jid: linked.jid, kind: 'replaced' });
  await page.reload();
  const r = row(page, bot.id);
  await eventually('the conflict shown', async () => {
    await page.reload();
    return (await r.getAttribute('data-status')) === 'conflict';
  }, 15_000);
  assert.match(await r.locator('[data-testid="status-reason"]').innerText(), /another session/);
  const { userId } = await sessionOf(page);
  await noSocketLeft(env.server, userId);
  const stats = await env.double.stats();
  assert.equal(stats.totals.replacedSent, 1, JSON.stringify(stats));
  await assertNeverTwoSessions(env.double);
  await page.context().close();
});

test('the phone removing the device shows the bot logged out', async () => {
  const page = await openPage(env.browser);
  const { bot, linked } = await linkedBot(page, env.server, env.double, 'Removed bot');
  await env.double.admin('/admin/devices/remove', { jid: linked.jid });
  const r = row(page, bot.id);
  await eventually('logged out shown', async () => {
    await page.reload();
    return (await r.getAttribute('data-status')) === 'logged_out';
  }, 15_000);
  assert.ok((await r.locator('[data-testid="status-reason"]').innerText()).length > 0);
  await assertNeverTwoSessions(env.double);
  await page.context().close();
});

test('a server restarted after kill -9 shows the bot connected again, with no QR', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'botlink-e2e-double.'));
  const double = await startDouble();
  const args = ['--db', path.join(dir, 'botlink.db'), '--data-dir', dir];
  let server = await startLinkedServer(args, { double });
  const page = await openPage(env.browser);
  try {
    const { bot, linked } = await linkedBot(page, server, double, 'Resumed bot');
    const addr = server.url.replace('http://', '');
    await server.kill();
    await eventually('the old connection gone', async () => (await double.stats()).totals.openNow === 0);
    server = await startLinkedServer([...args, '--addr', addr], { double });
    await eventually('the login after the restart', async () => {
      const stats = await double.stats();
      return Object.values(stats.devices).find((d) => d.jid === linked.jid)?.logins === 2;
    });
    await page.reload();
    const r = row(page, bot.id);
    await eventually('connected shown', async () => (await r.getAttribute('data-status')) === 'connected');
    assert.equal(await page.locator('[data-testid="qr-code"]').count(), 0, 'no QR');
    const stats = await double.stats();
    assert.equal(stats.totals.qrsOffered, 6, 'no new QR was offered');
    await assertNeverTwoSessions(double);
  } finally {
    await page.context().close();
    await server.stop();
    await double.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

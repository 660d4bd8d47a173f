// The production path (`botlink-server --static dist`) under its Content-Security-Policy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, byTestId, waitForState, createBotThroughWizard } from './helpers.mjs';

let server, browser;
before(async () => {
  server = await startServer([]);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the app loads and pairs under a CSP without unsafe-inline, with no violation', async () => {
  const res = await fetch(`${server.url}/bots/new`);
  const csp = res.headers.get('content-security-policy');
  assert.ok(csp, 'a CSP header on the app');
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval' 'sha256-[A-Za-z0-9+/=]+'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');

  const page = await openPage(browser);
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await createBotThroughWizard(page, server.url, 'CSP bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  assert.deepEqual(await page.evaluate(() => window.__violations), []);
  assert.ok(!page.consoleLines.some((l) => /Content Security Policy/i.test(l)), page.consoleLines.join('\n'));
  await page.context().close();
});

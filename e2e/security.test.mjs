// The production path (`botlink-server --static dist`) under its Content-Security-Policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverAndBrowser, openPage, byTestId, waitForState, createBotThroughWizard } from './helpers.mjs';

const env = serverAndBrowser();

test('the app loads and pairs under a CSP without unsafe-inline, with no violation', async () => {
  const res = await fetch(`${env.server.url}/bots/new`);
  const csp = res.headers.get('content-security-policy');
  assert.ok(csp, 'a CSP header on the app');
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval' 'sha256-[A-Za-z0-9+/=]+'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');

  const page = await openPage(env.browser);
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await createBotThroughWizard(page, env.server.url, 'CSP bot');
  await byTestId(page, 'generate-qr').click();
  await waitForState(page, 'waiting_for_scan');
  assert.deepEqual(await page.evaluate(() => window.__violations), []);
  assert.ok(!page.consoleLines.some((l) => /Content Security Policy/i.test(l)), page.consoleLines.join('\n'));
  await page.context().close();
});

// The app on a phone-like profile beside the unthrottled one, for bench/run: time from navigation
// to the dashboard's first bot row, and to the QR on screen after "Reconnect" on that row. The
// phone profile is Chromium DevTools' "Fast 3G" (1.6 Mbps down, 750 kbps up, 562.5 ms latency,
// as DevTools applies it: 90% of the nominal throughput) with the CPU slowed 4×, through CDP.
// Fresh context (cold cache) each run. Prints one JSON object of medians.
//   node bench/phone.mjs <dist dir> [runs]
import { startLinkedServer, launch, openPage, byTestId, createBotThroughWizard } from '../e2e/helpers.mjs';

const dist = process.argv[2];
const runs = Number(process.argv[3] ?? 10);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };

const FAST_3G = {
  offline: false,
  latency: 150 * 3.75,
  downloadThroughput: ((1.6 * 1000 * 1000) / 8) * 0.9,
  uploadThroughput: ((750 * 1000) / 8) * 0.9,
};

// Records, on the page's own clock (navigation start = 0), when the first row and the QR appear.
function instrument() {
  window.__t = {};
  new MutationObserver(() => {
    const t = window.__t;
    if (!t.firstRow && document.querySelector('[data-testid="bot-row"]')) t.firstRow = performance.now();
    if (!t.qr && document.querySelector('[data-testid="qr-code"] svg')) t.qr = performance.now();
  }).observe(document, { childList: true, subtree: true });
}

const server = await startLinkedServer(['--static', dist]);
const browser = await launch();
const out = {};
try {
  for (const profile of ['desktop', 'phone']) {
    const firstRow = [];
    const qr = [];
    for (let i = 0; i < runs; i++) {
      const page = await openPage(browser, profile === 'phone' ? { width: 390, height: 844 } : {});
      // One bot to list, made unthrottled (the figure is the dashboard's, not the wizard's).
      await createBotThroughWizard(page, server.url, `Phone ${i}`);
      await page.context().clearCookies();
      const fresh = await openPage(browser, profile === 'phone' ? { width: 390, height: 844 } : {});
      // The same user: the session lives in localStorage, so carry it over to the fresh context.
      const session = await page.evaluate(() => localStorage.getItem('botlink.session'));
      await page.context().close();
      await fresh.addInitScript((s) => localStorage.setItem('botlink.session', s), session);
      await fresh.addInitScript(instrument);
      if (profile === 'phone') {
        const cdp = await fresh.context().newCDPSession(fresh);
        await cdp.send('Network.enable');
        await cdp.send('Network.emulateNetworkConditions', FAST_3G);
        await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
      }
      await fresh.goto(server.url);
      await byTestId(fresh, 'bot-row').first().waitFor({ timeout: 60_000 });
      await byTestId(fresh, 'generate-qr').first().click();
      await fresh.locator('[data-testid="qr-code"] svg').waitFor({ timeout: 60_000 });
      const t = await fresh.evaluate(() => window.__t);
      firstRow.push(t.firstRow);
      qr.push(t.qr);
      await fresh.context().close();
    }
    out[`${profile}FirstRow`] = Number(median(firstRow).toFixed(0));
    out[`${profile}Qr`] = Number(median(qr).toFixed(0));
  }
} finally {
  await browser.close();
  await server.stop();
}
console.log(JSON.stringify(out));

// App figures for bench/run, measured inside headless Chromium against the reference server
// serving a release build. Prints one JSON object; bench/run makes the table.
//   node bench/app.mjs <dist dir> [runs]
import { startLinkedServer, launch, openPage, byTestId, waitForState, createBotThroughWizard, scan } from '../e2e/helpers.mjs';

const dist = process.argv[2];
const runs = Number(process.argv[3] ?? 10);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };

// Timestamps the page records itself: QR in the DOM, socket constructed, frames and DOM changes.
function instrument() {
  window.__t = {};
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    window.__t.wsNew ??= performance.now();
    ws.addEventListener('message', (e) => {
      if (typeof e.data === 'string' && e.data.includes('"whatsapp_connected"')) window.__t.connectedFrame = performance.now();
    });
    const close = ws.close.bind(ws);
    ws.close = (...a) => { window.__t.wsClose ??= performance.now(); return close(...a); };
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  const log = console.log.bind(console);
  console.log = (...a) => { if (String(a[0]).includes('→ debouncing (QR received)')) window.__t.qrData ??= performance.now(); log(...a); };
  new MutationObserver(() => {
    const t = window.__t;
    if (!t.qrSvg && document.querySelector('[data-testid="qr-code"] svg')) t.qrSvg = performance.now();
    if (!t.success && document.querySelector('[data-testid="pairing-success"]')) t.success = performance.now();
    if (!t.heading && document.querySelector('h1')) t.heading = performance.now();
  }).observe(document, { childList: true, subtree: true });
}

// The release build against the test build of the server on the WhatsApp double (scripts/test
// builds both binaries): its phone scans, and the login takes what the real protocol takes.
const server = await startLinkedServer(['--static', dist]);
const browser = await launch();
const out = { firstRender: [], qrRender: [], qrToSocket: [], connectedToSuccess: [], connectedToClose: [] };
try {
  for (let i = 0; i < runs; i++) {
    // First render of the dashboard: navigation start → the heading in the DOM (fresh context, cold cache).
    const page = await openPage(browser);
    await page.addInitScript(instrument);
    await page.goto(server.url);
    await page.locator('h1').waitFor();
    out.firstRender.push(await page.evaluate(() => window.__t.heading));

    await createBotThroughWizard(page, server.url, `Bench ${i}`);
    await page.evaluate(() => { for (const k of ['qrData', 'qrSvg', 'wsNew']) delete window.__t[k]; });
    await byTestId(page, 'generate-qr').click();
    await waitForState(page, 'waiting_for_scan');
    const qr = await byTestId(page, 'qr-code').getAttribute('data-qr');
    await scan(qr);
    await byTestId(page, 'pairing-success').waitFor();
    await page.waitForTimeout(100);
    const t = await page.evaluate(() => window.__t);
    out.qrRender.push(t.qrSvg - t.qrData);
    out.qrToSocket.push(t.wsNew - t.qrSvg);
    out.connectedToSuccess.push(t.success - t.connectedFrame);
    out.connectedToClose.push(t.wsClose - t.connectedFrame);
    await page.context().close();
  }
} finally {
  await browser.close();
  await server.stop();
}
const result = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Number(median(v).toFixed(1))]));
console.log(JSON.stringify(result));

// The admin page with WAHA as the WhatsApp provider: the "Koneksi WhatsApp" panel shows a session waiting for a
// QR scan, the QR image fetched (with the admin token) from the fake WAHA this test starts, and its Restart button
// reaches WAHA. A second number (a Fonnte device from CHANNELS_FILE) is listed beside it.
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, newPage, screenshot, signInAdmin, startServer, until } from './harness.mjs';

const API_KEY = 'browser-waha-key';
// a valid 1x1 PNG: the page must be able to draw what WAHA serves
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

let server;
let browser;
let waha;
let knowledge;

/** A fake WAHA: one session waiting for its QR code to be scanned; every request must carry the API key. */
async function startFakeWaha() {
  const seen = [];
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(`${req.method} ${req.url}`);
      if (req.headers['x-api-key'] !== API_KEY) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"message":"Unauthorized"}');
      } else if (req.method === 'GET' && req.url === '/api/sessions/default') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ name: 'default', status: 'SCAN_QR_CODE', me: null, engine: { engine: 'WEBJS' } }));
      } else if (req.method === 'GET' && req.url.startsWith('/api/default/auth/qr')) {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(PNG);
      } else if (req.method === 'POST' && /^\/api\/sessions\/default\/(start|stop|restart)$/.test(req.url)) {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"name":"default","status":"STARTING"}');
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"message":"not found"}');
      }
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    seen,
    close: () => new Promise((resolve) => { srv.closeAllConnections?.(); srv.close(() => resolve()); }),
  };
}

before(async () => {
  waha = await startFakeWaha();
  // no documents: this test is about the WhatsApp connection, and an empty index is ready at once
  knowledge = await fsp.mkdtemp(path.join(os.tmpdir(), 'wa-browser-waha-kb-'));
  const channels = path.join(knowledge, '..', path.basename(knowledge) + '-channels.toml');
  await fsp.writeFile(channels, [
    '[[account]]', 'name = "billing"', 'kind = "fonnte"',
    `settings = { FONNTE_API_URL = "${waha.url}" }`,
    'secrets = { FONNTE_TOKEN = "BILLING_FONNTE_TOKEN", FONNTE_WEBHOOK_SECRET = "BILLING_FONNTE_SECRET" }', '',
  ].join('\n'));
  server = await startServer({
    name: 'waha-server',
    env: {
      WAHA_URL: waha.url, WAHA_API_KEY: API_KEY, WAHA_WEBHOOK_HMAC_KEY: 'browser-waha-hmac', KNOWLEDGE_DIR: knowledge,
      CHANNELS_FILE: channels, BILLING_FONNTE_TOKEN: 'browser-fonnte-token', BILLING_FONNTE_SECRET: 'browser-fonnte-secret',
    },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await waha?.close();
  if (knowledge) {
    await fsp.rm(knowledge, { recursive: true, force: true });
    await fsp.rm(knowledge + '-channels.toml', { force: true });
  }
});

test('admin: a WAHA session waiting for a QR scan shows the code and can be restarted', { timeout: 180_000 }, async () => {
  const { page, context, problems } = await newPage(browser, server.baseUrl, { width: 1280, height: 900 });
  await page.goto(server.baseUrl + '/admin');
  await signInAdmin(page);

  const panel = page.getByTestId('wa-connection');
  await panel.waitFor({ state: 'visible' });
  assert.match(await panel.innerText(), /Koneksi WhatsApp/);
  assert.match(await panel.innerText(), /WAHA/);
  assert.match(await page.getByTestId('wa-connection-state').innerText(), /Menunggu pindai kode QR/);
  const numbers = page.getByTestId('wa-numbers');
  await numbers.waitFor({ state: 'visible' });
  assert.match(await numbers.innerText(), /default · WAHA[\s\S]*Menunggu pindai kode QR/);
  assert.match(await numbers.innerText(), /billing · Fonnte/);

  const qr = page.getByTestId('wa-qr');
  await until(async () => (await qr.isVisible()) && (await qr.evaluate((img) => img.complete && img.naturalWidth > 0)),
    { what: 'the QR image drawn' });
  assert.match(await qr.getAttribute('src'), /^blob:/, 'fetched with the token, shown from a blob');
  assert.ok(waha.seen.some((r) => r.startsWith('GET /api/default/auth/qr')), 'the QR code came from WAHA');
  await screenshot(page, 'admin-waha-qr');

  await page.getByTestId('wa-session-restart').click();
  await until(async () => waha.seen.includes('POST /api/sessions/default/restart'), { what: 'the restart at WAHA' });
  await until(async () => !(await page.getByTestId('wa-session-restart').isDisabled()), { what: 'buttons usable again' });

  assert.deepEqual(problems, []);
  await context.close();
});

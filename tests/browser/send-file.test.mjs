// Kirim pesan with a file: a PDF attached to a number that wrote, its text as the caption, sent as a multipart
// form; the fake Graph gets the upload at /media and a document message naming it, with the caption and the
// file's name, once, also when the first answer is lost and Kirim is pressed again. An image over 5 MB is
// refused in the page with nothing sent; audio takes no caption.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import {
  ADMIN_TOKEN, launchBrowser, newPage, screenshot, sendWhatsAppText, signInAdmin, sleep, startServer, until,
} from './harness.mjs';

const APP_SECRET = 'browser-file-secret';
const PHONE_NUMBER_ID = '100000000000001'; // the harness's webhook says this number received the message
const CUSTOMER = '6281255560001';
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

/**
 * A fake Graph for files: `/media` takes a multipart upload and answers its id (kept whole in `uploads`),
 * `/messages` accepts texts, read receipts and typing, and keeps every file message in `media`.
 */
async function startFileGraph() {
  const uploads = [];
  const media = [];
  const texts = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const answer = (status, json) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(json)); };
      if (req.method === 'POST' && req.url.endsWith('/media')) {
        uploads.push({ url: req.url, contentType: req.headers['content-type'] || '', body: body.toString('latin1') });
        answer(200, { id: `media.fake.${uploads.length}` });
        return;
      }
      let parsed = null;
      try { parsed = JSON.parse(body.toString('utf8')); } catch { /* answered below */ }
      if (req.method !== 'POST' || !req.url.endsWith('/messages') || !parsed) {
        answer(404, { error: { code: 100, message: 'unsupported request' } });
      } else if (parsed.status === 'read' || !parsed.type) {
        answer(200, { success: true });
      } else {
        if (parsed.type === 'text') texts.push(parsed.text?.body); else media.push(parsed);
        answer(200, { messaging_product: 'whatsapp', contacts: [{ wa_id: parsed.to }], messages: [{ id: `wamid.fake.f${texts.length + media.length}` }] });
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    uploads,
    media,
    texts,
    env: { WHATSAPP_GRAPH_BASE: `http://127.0.0.1:${port}`, META_ACCESS_TOKEN: 'fake-graph-token', META_PHONE_NUMBER_ID: PHONE_NUMBER_ID },
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

let graph;
let server;
let browser;

before(async () => {
  graph = await startFileGraph();
  server = await startServer({
    name: 'send-file-server',
    env: { ...graph.env, META_APP_SECRET: APP_SECRET, META_WEBHOOK_VERIFY_TOKEN: 'browser-verify-token', SEND_RATE_PER_SECOND: '20' },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await graph?.close();
});

async function openSend() {
  const opened = await newPage(browser, server.baseUrl, { width: 1280, height: 900 });
  await opened.page.goto(server.baseUrl + '/admin');
  await signInAdmin(opened.page);
  await opened.page.evaluate(() => document.getElementById('kirim').scrollIntoView());
  return opened;
}

test('a PDF goes with its caption as an upload and a document message, once', { timeout: 120_000 }, async () => {
  // the customer writes first: the 24-hour window is open, for files too
  const res = await sendWhatsAppText(server.baseUrl, APP_SECRET, { from: CUSTOMER, id: 'wamid.browser.file.1', text: 'minta tagihannya kak' });
  assert.equal(res.status, 200);
  await until(() => graph.texts.length >= 1, { what: "the bot's answer at Graph" });

  const { page, context, problems } = await openSend();
  await page.getByTestId('send-to').fill('0812-5556-0001');
  await page.getByTestId('send-file').setInputFiles({ name: 'tagihan-desember.pdf', mimeType: 'application/pdf', buffer: PDF });
  const name = page.getByTestId('send-file-name');
  await until(() => name.isVisible(), { what: 'the chosen file' });
  assert.match(await name.innerText(), /tagihan-desember\.pdf · dokumen · \d+ B/);
  const preview = page.getByTestId('send-preview');
  assert.match(await preview.getByTestId('send-preview-file').innerText(), /tagihan-desember\.pdf/);

  // the text is the caption: 1,024 characters at most
  const hint = page.getByTestId('send-file-hint');
  await page.getByTestId('send-text').fill('x'.repeat(1025));
  assert.match(await hint.innerText(), /Keterangan terlalu panjang: 1\.025 karakter, paling banyak 1\.024/);
  assert.equal(await page.getByTestId('send-button').isDisabled(), true);
  const caption = 'Tagihan *Desember* terlampir';
  await page.getByTestId('send-text').fill(caption);
  assert.match(await hint.innerText(), /keterangan berkas: 28\/1\.024/);
  assert.equal(await page.getByTestId('send-button').isDisabled(), false);
  assert.match(await preview.innerText(), /tagihan-desember\.pdf[\s\S]*Tagihan Desember terlampir/, 'the file above its caption');
  assert.equal(await preview.locator('strong', { hasText: 'Desember' }).count(), 1);
  await page.getByTestId('send-file-hint').scrollIntoViewIfNeeded();
  await screenshot(page, 'send-file-pdf');

  // the first answer is lost after the server took the form: pressing Kirim again sends nothing new
  const posts = [];
  page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/api/messages')) posts.push(r); });
  let firstStatus = null;
  await page.route('**/api/messages', async (route) => {
    const response = await route.fetch();
    firstStatus = response.status();
    await route.abort('connectionreset');
  }, { times: 1 });
  await page.getByTestId('send-button').dblclick();
  await until(async () => await page.getByTestId('send-error').isVisible(), { what: 'the lost answer' });
  assert.equal(firstStatus, 202, 'the server took the first form');
  assert.equal(posts.length, 1, 'a double click posts once');
  assert.match(await page.getByTestId('send-error').innerText(), /Kirim lagi/);
  assert.match(await name.innerText(), /tagihan-desember\.pdf/, 'the file stays for another try');
  assert.equal(await page.getByTestId('send-text').inputValue(), caption, 'and so does the caption');

  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/api/messages')),
    page.getByTestId('send-button').click(),
  ]);
  assert.equal(answer.status(), 200, 'the same key: the first message again');
  const again = await answer.json();
  assert.equal(again.duplicate, true);
  assert.equal(again.message.media.type, 'document');
  assert.equal(again.message.media.filename, 'tagihan-desember.pdf');
  assert.equal(again.message.media.upload.mime, 'application/pdf');
  assert.equal(again.message.media.upload.size, PDF.length);
  const sentForm = posts[1];
  assert.match(sentForm.headers()['content-type'], /^multipart\/form-data; boundary=/);
  assert.equal(sentForm.headers().authorization, `Bearer ${ADMIN_TOKEN}`);

  await until(() => graph.media.length === 1, { what: 'the document at Graph' });
  const sent = graph.media[0];
  assert.equal(sent.type, 'document');
  assert.equal(sent.to, CUSTOMER);
  assert.deepEqual(sent.document, { id: 'media.fake.1', caption, filename: 'tagihan-desember.pdf' });
  assert.equal(graph.uploads.length, 1);
  const upload = graph.uploads[0];
  assert.equal(upload.url, `/v23.0/${PHONE_NUMBER_ID}/media`);
  assert.match(upload.contentType, /^multipart\/form-data/);
  assert.match(upload.body, /name="messaging_product"\r\n\r\nwhatsapp/);
  assert.match(upload.body, /name="file"; filename="tagihan-desember\.pdf"\r\nContent-Type: application\/pdf\r\n\r\n%PDF-1\.4\n/);

  await until(async () => (await page.getByTestId('send-result').getAttribute('data-state')) === 'sent', { what: 'the send result: sent' });
  assert.equal(await page.getByTestId('send-error').isVisible(), false);
  assert.equal(await page.getByTestId('send-text').inputValue(), '', 'the caption is cleared');
  assert.equal(await name.isVisible(), false, 'the file is cleared');
  assert.match(await hint.innerText(), /sampai 5 MB/);
  await sleep(1500);
  assert.equal(graph.media.length, 1, 'sent once');
  assert.equal(graph.uploads.length, 1, 'uploaded once');

  assert.deepEqual(problems, []);
  await context.close();
});

test('an image over 5 MB is refused in the page with nothing sent; audio takes no caption', { timeout: 60_000 }, async () => {
  const { page, context, problems } = await openSend();
  const posts = [];
  page.on('request', (r) => { if (r.method() === 'POST' && r.url().includes('/api/messages')) posts.push(r.url()); });
  const uploadsBefore = graph.uploads.length;

  await page.getByTestId('send-to').fill('0812-5556-0001');
  await page.getByTestId('send-text').fill('Foto kwitansi');
  // a real JPEG (drawn by the browser) padded to 6 MB: its thumbnail shows, its size is refused
  const jpeg = Buffer.from(await page.evaluate(() => {
    const canvas = document.createElement('canvas');
    canvas.width = 40; canvas.height = 30;
    const g = canvas.getContext('2d');
    g.fillStyle = '#2a9d8f'; g.fillRect(0, 0, 40, 30);
    return canvas.toDataURL('image/jpeg').split(',')[1];
  }), 'base64');
  const big = Buffer.concat([jpeg, Buffer.alloc(6 * 1024 * 1024 - jpeg.length)]);
  assert.deepEqual([...big.subarray(0, 3)], [0xff, 0xd8, 0xff]);
  await page.getByTestId('send-file').setInputFiles({ name: 'kwitansi.jpg', mimeType: 'image/jpeg', buffer: big });
  const name = page.getByTestId('send-file-name');
  await until(() => name.isVisible(), { what: 'the chosen file' });
  assert.match(await name.innerText(), /kwitansi\.jpg · gambar · 6 MB/);
  const hint = page.getByTestId('send-file-hint');
  assert.match(await hint.innerText(), /Berkas terlalu besar \(6 MB\): gambar paling besar 5 MB/);
  assert.match(await hint.getAttribute('class'), /bad/);
  assert.equal(await page.getByTestId('send-button').isDisabled(), true);
  await until(async () => (await page.getByTestId('send-preview-image').evaluate((img) => img.complete && img.naturalWidth)) === 40,
    { what: 'the photo previewed as itself' });
  assert.match(await page.getByTestId('send-preview').locator('img').getAttribute('src'), /^blob:/);
  await hint.scrollIntoViewIfNeeded();
  await screenshot(page, 'send-file-too-large');
  // Enter in a field, or a submit some other way: still nothing goes
  await page.getByTestId('send-form').evaluate((form) => form.requestSubmit());
  await sleep(1000);
  assert.deepEqual(posts, [], 'no request reached the server');
  assert.equal(graph.uploads.length, uploadsBefore);

  // removed: the text alone can go again
  await page.getByTestId('send-file-remove').click();
  assert.equal(await name.isVisible(), false);
  assert.equal(await page.getByTestId('send-preview').locator('img').count(), 0);
  assert.doesNotMatch(await hint.innerText(), /terlalu besar/);
  assert.equal(await page.getByTestId('send-button').isDisabled(), false);

  // audio takes no caption: the text box is off and says so
  await page.getByTestId('send-file').setInputFiles({ name: 'pesan-suara.ogg', mimeType: 'audio/ogg', buffer: Buffer.from('OggS\0\x02fake') });
  await until(async () => /pesan-suara\.ogg · audio/.test(await name.innerText()), { what: 'the audio file' });
  assert.equal(await page.getByTestId('send-text').isDisabled(), true);
  assert.match(await hint.innerText(), /Audio dikirim tanpa keterangan/);
  assert.doesNotMatch(await page.getByTestId('send-preview').innerText(), /Foto kwitansi/, 'no caption shown for audio');
  await page.getByTestId('send-file-remove').click();
  assert.equal(await page.getByTestId('send-text').isDisabled(), false);
  assert.equal(await page.getByTestId('send-text').inputValue(), 'Foto kwitansi', 'the text was kept');

  assert.deepEqual(posts, []);
  assert.deepEqual(problems, []);
  await context.close();
});

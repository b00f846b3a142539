// The web chat at "/": two quick messages -> one answer after the quiet period, with sources; history survives a reload.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  launchBrowser, newPage, recordTyping, screenshot, sleep, startServer, until,
} from './harness.mjs';

const FIRST = 'halo kak';
const SECOND = 'berapa biaya konsultasi dokter umum?';
// typed in Indonesian local notation; the page turns it into 62…
const TYPED_PHONE = '0813-7777-0001';
const PHONE = '6281377770001';

let server;
let browser;

before(async () => {
  server = await startServer({
    name: 'chat-server',
    // every page load of every test starts conversations from 127.0.0.1, more than a visitor's default 10 an hour
    env: { WEB_CHAT_LINK_DOMAINS: 'klinik.example', WEB_CHAT_CONVERSATIONS_PER_HOUR: '50' },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const bubbles = (page, who) => page.locator(`[data-testid="bubble-${who}"]`);

/** A fresh browser context chatting as the `index`th sample number, connected. */
async function openSampleChat(index) {
  const opened = await newPage(browser, server.baseUrl, { width: 800, height: 700 });
  const { page } = opened;
  await page.goto(server.baseUrl + '/');
  const select = page.getByTestId('phone-select');
  await until(async () => (await select.locator('option').count()) > 2, { what: 'sample phones' });
  const samples = await select.locator('option').evaluateAll((os) => os.map((o) => o.value).filter((v) => v !== '__other'));
  await select.selectOption(samples[index]);
  await until(async () => (await page.locator('#bot-status').textContent()) === 'online', { what: 'connected' });
  return opened;
}

test('two quick messages get exactly one answer with sources, and history survives a reload', { timeout: 180_000 }, async () => {
  const { page, context, problems } = await newPage(browser, server.baseUrl, { width: 1100, height: 820 });
  await recordTyping(page);
  await page.goto(server.baseUrl + '/');

  // pick "nomor lain…" and type a number
  const select = page.getByTestId('phone-select');
  await until(async () => (await select.locator('option').count()) > 1, { what: 'sample phones in the select' });
  await select.selectOption('__other');
  const phoneInput = page.getByTestId('phone-input');
  await phoneInput.waitFor({ state: 'visible' });
  await phoneInput.fill(TYPED_PHONE);
  await phoneInput.press('Enter');
  await until(async () => (await page.evaluate(() => localStorage.getItem('waChat.phone'))) === PHONE, { what: 'phone kept in localStorage' });
  await until(async () => (await page.locator('#bot-status').textContent()) === 'online', { what: 'event stream connected (status "online")' });

  // quiet-period hint is shown
  const notices = await page.locator('#notices').innerText();
  assert.match(notices, /Bot menjawab setelah Anda diam \d+([.,]\d+)? detik\./);

  // two messages quickly: Enter, then the send button
  const input = page.getByTestId('message-input');
  await input.fill(FIRST);
  await input.press('Enter');
  await input.fill(SECOND);
  await page.getByTestId('send-button').click();

  await until(async () => (await bubbles(page, 'customer').count()) === 2, { what: 'two customer bubbles' });
  await until(
    async () => (await page.locator('[data-testid="bubble-customer"][data-status="sent"]').count()) === 2,
    { what: 'both messages acknowledged (202, one grey tick)' },
  );
  assert.equal(await page.locator('[data-testid="bubble-customer"] svg.tick').count(), 2);

  // one bot bubble after the quiet period, echoing both messages
  await until(async () => (await bubbles(page, 'bot').count()) >= 1, { timeoutMs: 30_000, what: 'a bot bubble' });
  assert.equal(await bubbles(page, 'bot').count(), 1, 'exactly one bot bubble');
  const botText = await bubbles(page, 'bot').first().innerText();
  assert.ok(botText.includes(FIRST), `bot reply should contain "${FIRST}": ${botText}`);
  assert.ok(botText.includes(SECOND), `bot reply should contain "${SECOND}": ${botText}`);
  assert.ok(botText.includes(`${FIRST} | ${SECOND}`), `both messages in one LLM request, joined: ${botText}`);

  const typingSeen = await page.evaluate(() => window.__typingSeen);
  if (server.fake) assert.equal(server.fake.count, 1, 'the fake LLM got exactly one request');
  // the fake LLM takes 2 s, longer than the server waits before sending "typing"
  assert.ok(typingSeen > 0, 'the typing indicator was shown while the answer was being written');
  assert.equal(await page.getByTestId('typing-indicator').isVisible(), false, 'typing indicator hidden once the answer is there');

  // sources under the bot bubble
  const sources = bubbles(page, 'bot').first().getByTestId('sources');
  await sources.waitFor({ state: 'visible', timeout: 10_000 });
  assert.match(await sources.innerText(), /Sumber:/);
  assert.ok((await sources.getByTestId('source-item').count()) >= 1, 'at least one source item');

  // nothing more arrives
  await sleep(3000);
  assert.equal(await bubbles(page, 'bot').count(), 1, 'still exactly one bot bubble 3 s later');
  if (server.fake) assert.equal(server.fake.count, 1, 'still exactly one LLM request');
  assert.equal(await page.locator('#bot-status').textContent(), 'online');
  await screenshot(page, 'chat-answered');

  // reload: the number is remembered and the history comes back
  await page.reload();
  await until(async () => (await bubbles(page, 'bot').count()) === 1 && (await bubbles(page, 'customer').count()) === 2,
    { what: 'history after reload (2 customer bubbles, 1 bot bubble)' });
  assert.equal(await page.getByTestId('phone-select').inputValue(), '__other');
  assert.equal(await page.getByTestId('phone-input').inputValue(), PHONE);
  const customerTexts = await bubbles(page, 'customer').allInnerTexts();
  assert.ok(customerTexts[0].includes(FIRST) && customerTexts[1].includes(SECOND), `history order: ${customerTexts}`);
  await bubbles(page, 'bot').first().getByTestId('sources').waitFor({ state: 'visible', timeout: 5000 });
  await sleep(1500);
  assert.equal(await bubbles(page, 'bot').count(), 1, 'no duplicate after reconnect/history reload');
  await screenshot(page, 'chat-after-reload');

  assert.deepEqual(problems, [], 'no page errors and no external requests');
  await context.close();
});

test('server text is escaped and WhatsApp formatting is rendered; works at 375 px', { timeout: 120_000 }, async () => {
  const { page, context, problems } = await newPage(browser, server.baseUrl, { width: 375, height: 740, mobile: true });
  await page.goto(server.baseUrl + '/');
  const select = page.getByTestId('phone-select');
  await until(async () => (await select.locator('option').count()) > 1, { what: 'sample phones' });
  const samples = await select.locator('option').evaluateAll((os) => os.map((o) => o.value).filter((v) => v !== '__other'));
  await select.selectOption(samples[samples.length - 1]);
  await until(async () => (await page.locator('#bot-status').textContent()) === 'online', { what: 'connected' });
  const before = await page.getByTestId('bubble-bot').count();

  const hostile = '<img src=x onerror="window.__xss=1"> *tebal* dan _miring_';
  await page.getByTestId('message-input').fill(hostile);
  await page.getByTestId('message-input').press('Enter');
  const mine = page.getByTestId('bubble-customer').last();
  await until(async () => (await mine.getAttribute('data-status')) === 'sent', { what: 'message sent' });
  assert.equal(await mine.locator('img').count(), 0, 'no <img> injected');
  assert.equal(await mine.locator('strong').innerText(), 'tebal');
  assert.equal(await mine.locator('em').innerText(), 'miring');
  assert.ok((await mine.innerText()).includes('<img src=x'), 'the markup is shown as text');

  // the answer echoes the same text back (fake LLM): still escaped
  await until(async () => (await page.getByTestId('bubble-bot').count()) > before, { timeoutMs: 30_000, what: 'the answer' });
  const answer = page.getByTestId('bubble-bot').last();
  assert.equal(await answer.locator('img').count(), 0, 'no <img> injected from server text');
  assert.equal(await page.evaluate(() => window.__xss), undefined);

  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow}px)`);
  await page.getByTestId('message-input').fill('Terima kasih kak, sangat membantu');
  await screenshot(page, 'chat-mobile-375');
  assert.deepEqual(problems, []);
  await context.close();
});

test('a failed send is retried once with the same clientId; "coba lagi" resends it', { timeout: 120_000 }, async () => {
  const { page, context, problems } = await openSampleChat(1);

  const posts = [];
  let failNext = 1;
  await page.route('**/api/chat/messages', async (route) => {
    posts.push(JSON.parse(route.request().postData()).clientId);
    if (failNext > 0) { failNext -= 1; await route.abort('connectionreset'); } else { await route.continue(); }
  });

  // one network failure: the automatic retry goes through with the same clientId
  await page.getByTestId('message-input').fill('tes jaringan putus sebentar');
  await page.getByTestId('message-input').press('Enter');
  const first = page.getByTestId('bubble-customer').last();
  await until(async () => (await first.getAttribute('data-status')) === 'sent', { what: 'sent after one retry' });
  assert.equal(posts.length, 2, 'one retry');
  assert.equal(posts[0], posts[1], 'the retry reuses the clientId');
  assert.match(posts[0], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

  // two failures: red mark and "coba lagi"
  failNext = 2;
  await page.getByTestId('message-input').fill('tes gagal kirim');
  await page.getByTestId('message-input').press('Enter');
  const second = page.getByTestId('bubble-customer').last();
  await until(async () => (await second.getAttribute('data-status')) === 'failed', { what: 'failed after the retry' });
  const retry = second.getByRole('button', { name: 'coba lagi' });
  assert.ok(await retry.isVisible(), '"coba lagi" shown');
  await screenshot(page, 'chat-send-failed');
  await retry.click();
  await until(async () => (await second.getAttribute('data-status')) === 'sent', { what: 'sent after "coba lagi"' });
  assert.equal(posts.length, 5);
  assert.equal(new Set(posts.slice(2)).size, 1, '"coba lagi" reuses the clientId');
  assert.equal(await page.getByTestId('bubble-customer').count(), 2, 'no duplicate bubbles');
  assert.deepEqual(problems.filter((p) => !p.includes('connectionreset')), []);

  // after a reload, history that fails to load is fetched again without anyone pressing a button
  let historyFailures = 2;
  await page.route('**/api/chat/history', async (route) => {
    if (historyFailures > 0) { historyFailures -= 1; await route.abort('connectionreset'); } else { await route.continue(); }
  });
  await page.reload();
  await until(async () => (await page.getByTestId('bubble-customer').count()) === 2, { what: 'history loaded by itself' });
  assert.equal(historyFailures, 0, 'both failures were seen');
  await until(async () => await page.locator('#conn-notice').isHidden(), { what: 'the notice goes away once loaded' });
  await context.close();
});

// A 1x1 PNG: the page scales it through a canvas into a JPEG, as it would a phone photo.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

test('a photo with the typed caption reaches the model as an image and gets one answer', { timeout: 120_000 }, async () => {
  const { page, context, problems } = await openSampleChat(2);
  await page.getByTestId('message-input').fill('ini struk saya');
  await page.getByTestId('photo-input').setInputFiles({ name: 'struk.png', mimeType: 'image/png', buffer: PNG });
  const sent = bubbles(page, 'customer').last();
  await until(async () => (await sent.getAttribute('data-status')) === 'sent', { what: 'photo stored by the server' });
  assert.equal(await sent.locator('img.media-thumb').count(), 1, 'the photo is shown in its bubble');
  assert.match(await sent.innerText(), /ini struk saya/);
  assert.equal(await page.getByTestId('message-input').inputValue(), '', 'the caption left the box with the photo');

  await until(async () => (await bubbles(page, 'bot').count()) >= 1, { what: 'the answer' });
  const answer = await bubbles(page, 'bot').last().innerText();
  assert.match(answer, /\[gambar\] \| ini struk saya \[\+1 gambar\]/);
  // Earlier tests' answers may still be arriving: only this turn's requests count.
  const asked = server.fake.requests.filter((r) => JSON.stringify(r.body).includes('ini struk saya'));
  assert.equal(asked.length, 1, 'one LLM request');
  const parts = asked[0].body.messages.at(-1).content;
  assert.ok(parts[1].image_url.url.startsWith('data:image/jpeg;base64,'), 'the image went to the model as a data URL');
  await screenshot(page, 'chat-photo');
  assert.deepEqual(problems, []);
  await context.close();
});

test('a voice recording is transcribed and answered like a typed message', { timeout: 120_000 }, async () => {
  const { page, context, problems } = await openSampleChat(0);
  const voice = page.getByTestId('voice-button');
  await voice.click();
  await until(async () => (await voice.getAttribute('aria-pressed')) === 'true', { what: 'recording started' });
  await sleep(1500);
  await voice.click();
  const sent = bubbles(page, 'customer').last();
  await until(async () => (await sent.getAttribute('data-status')) === 'sent', { what: 'recording stored by the server' });
  assert.equal(await sent.locator('audio').count(), 1, 'the recording can be played back in its bubble');
  await until(async () => (await bubbles(page, 'bot').count()) >= 1, { what: 'the answer' });
  assert.match(await bubbles(page, 'bot').last().innerText(), /Jawaban uji: \[pesan suara\] rekaman uji/);
  assert.equal(server.fake.transcriptions.length, 1, 'transcribed once');
  const asked = server.fake.requests.filter((r) => JSON.stringify(r.body).includes('rekaman uji'));
  assert.equal(asked.length, 1, 'one LLM request');
  assert.deepEqual(problems, []);
  await context.close();
});

test('a conversation is private to its browser; links are clickable only to allowed domains', { timeout: 120_000 }, async () => {
  const first = await newPage(browser, server.baseUrl, { width: 900, height: 760 });
  const urls = [];
  first.page.on('request', (r) => urls.push(r.url()));
  await first.page.goto(server.baseUrl + '/');
  await until(async () => (await first.page.locator('#bot-status').textContent()) === 'online', { what: 'connected' });
  const phone = await first.page.getByTestId('phone-select').inputValue();
  const secret = await first.page.evaluate((p) => JSON.parse(localStorage.getItem('waChat.conversations') || '{}')[p], phone);
  assert.match(secret || '', /^[0-9a-f]{64}$/, 'the conversation secret is kept in localStorage');

  const PRIVATE = 'nama saya Sari, alamat Jl. Melati 7. lihat https://www.klinik.example/jadwal dan https://klinik.example.evil.test/login';
  await first.page.getByTestId('message-input').fill(PRIVATE);
  await first.page.getByTestId('message-input').press('Enter');
  await until(async () => (await bubbles(first.page, 'bot').count()) === 1, { timeoutMs: 30_000, what: 'the answer' });
  const answer = bubbles(first.page, 'bot').first();
  const links = await answer.locator('a').evaluateAll((as) => as.map((a) => a.href));
  assert.deepEqual(links, ['https://www.klinik.example/jadwal'], 'only the allowed domain (a subdomain of it) is a link');
  assert.ok((await answer.innerText()).includes('https://klinik.example.evil.test/login'), 'the other URL is plain text');
  await screenshot(first.page, 'chat-links');
  assert.ok(urls.every((u) => !u.includes(secret)), 'the secret never appears in a URL');

  // another browser (its own storage) with the same number sees nothing of it, and gets its own conversation
  const second = await newPage(browser, server.baseUrl, { width: 900, height: 760 });
  await second.page.goto(server.baseUrl + '/');
  await until(async () => (await second.page.locator('#bot-status').textContent()) === 'online', { what: 'second browser connected' });
  assert.equal(await second.page.getByTestId('phone-select').inputValue(), phone, 'the same number');
  await sleep(1500);
  assert.equal(await second.page.getByTestId('message-list').locator('li').count(), 0, 'no history of the first browser');
  assert.ok(!(await second.page.locator('body').innerText()).includes('Melati'));
  await second.page.getByTestId('message-input').fill('halo dari browser kedua');
  await second.page.getByTestId('message-input').press('Enter');
  await until(async () => (await bubbles(second.page, 'bot').count()) === 1, { timeoutMs: 30_000, what: 'the second answer' });
  assert.equal(await bubbles(first.page, 'bot').count(), 1, 'the first browser got no event of the second');
  assert.ok(!(await bubbles(second.page, 'bot').first().innerText()).includes('Melati'));

  // "Percakapan baru" starts an empty conversation; the old one is gone from this browser
  await first.page.getByTestId('new-conversation').click();
  await until(async () => (await first.page.getByTestId('message-list').locator('li').count()) === 0, { what: 'an empty conversation' });
  await until(async () => (await first.page.locator('#bot-status').textContent()) === 'online', { what: 'reconnected' });
  const fresh = await first.page.evaluate((p) => JSON.parse(localStorage.getItem('waChat.conversations') || '{}')[p], phone);
  assert.match(fresh || '', /^[0-9a-f]{64}$/);
  assert.notEqual(fresh, secret, 'a new secret');
  await first.page.reload();
  await until(async () => (await first.page.locator('#bot-status').textContent()) === 'online', { what: 'connected after reload' });
  await sleep(1000);
  assert.equal(await bubbles(first.page, 'customer').count(), 0, 'the new conversation is the one kept');

  assert.deepEqual(first.problems, []);
  assert.deepEqual(second.problems, []);
  await first.context.close();
  await second.context.close();
});

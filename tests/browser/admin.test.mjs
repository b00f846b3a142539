// The admin page at "/admin": token login, status cards, masked conversations + transcript, document refresh, charts,
// and the outbox view (a reply the fake Graph refused, sent again with Retry).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  ADMIN_TOKEN, launchBrowser, newPage, screenshot, sendWhatsAppText, signInAdmin, sleep, startFakeGraph, startServer,
  until,
} from './harness.mjs';

const PHONE = '6285712340042';
const QUESTION = 'jam buka poli gigi hari sabtu?';
const WA_PHONE = '6281398760051';
const WA_QUESTION = 'apakah ada dokter anak?';
const APP_SECRET = 'browser-app-secret';
// 131026: Graph's "message undeliverable", which the outbox does not retry by itself
const REFUSED = 131026;

let server;
let browser;
let graph;

async function outbox() {
  const res = await fetch(server.baseUrl + '/api/admin/outbox?limit=50', { headers: { authorization: 'Bearer ' + ADMIN_TOKEN } });
  assert.equal(res.status, 200);
  return (await res.json()).messages;
}

before(async () => {
  graph = await startFakeGraph({ refuseCode: REFUSED });
  server = await startServer({
    name: 'admin-server',
    env: { ...graph.env, META_APP_SECRET: APP_SECRET, META_WEBHOOK_VERIFY_TOKEN: 'browser-verify-token' },
  });
  browser = await launchBrowser();
  // a conversation to look at: one message through the web chat API, answered after the quiet period
  const started = await fetch(server.baseUrl + '/api/chat/conversations', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ phone: PHONE }),
  });
  assert.equal(started.status, 201, 'POST /api/chat/conversations answers 201');
  const auth = { authorization: 'Bearer ' + (await started.json()).secret };
  const res = await fetch(server.baseUrl + '/api/chat/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify({ text: QUESTION, clientId: randomUUID() }),
  });
  assert.equal(res.status, 202, 'POST /api/chat/messages answers 202');
  await until(async () => {
    const h = await (await fetch(`${server.baseUrl}/api/chat/history`, { headers: auth })).json();
    return h.messages.some((m) => m.from === 'bot');
  }, { timeoutMs: 30_000, what: 'the bot answer in /api/chat/history' });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await graph?.close();
});

test('admin: login, status, masked conversations with transcript, refresh report, charts', { timeout: 240_000 }, async () => {
  const { page, context, problems } = await newPage(browser, server.baseUrl, { width: 1280, height: 900 });
  await page.goto(server.baseUrl + '/admin');

  // wrong token
  const tokenInput = page.getByTestId('token-input');
  await tokenInput.waitFor({ state: 'visible' });
  assert.equal(await tokenInput.getAttribute('type'), 'password');
  await tokenInput.fill('definitely-wrong');
  await page.getByTestId('login-button').click();
  const loginError = page.getByTestId('login-error');
  await loginError.waitFor({ state: 'visible' });
  assert.match(await loginError.innerText(), /Token salah/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('waAdmin.token')), null, 'a wrong token is not kept');
  await screenshot(page, 'admin-login-error');

  // right token
  await tokenInput.fill(ADMIN_TOKEN);
  await tokenInput.press('Enter');
  const cards = page.getByTestId('status-cards');
  await until(async () => (await cards.innerText()).includes('Basis pengetahuan'), { what: 'status cards' });
  const cardsText = await cards.innerText();
  for (const title of ['Konfigurasi', 'Database', 'Basis pengetahuan', 'LLM', 'WhatsApp']) {
    assert.ok(cardsText.includes(title), `status card "${title}"`);
  }
  assert.ok(await loginError.isHidden(), 'no login error after a good login');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('waAdmin.token')), ADMIN_TOKEN, 'token kept in sessionStorage');
  assert.equal(await page.evaluate(() => localStorage.getItem('waAdmin.token')), null, 'token never in localStorage');

  // conversations: masked numbers only
  const items = page.getByTestId('conversation-item');
  await until(async () => (await items.count()) >= 1, { what: 'conversation items' });
  const texts = await items.allInnerTexts();
  assert.ok(texts.some((t) => /\d+\*{3,}\d+/.test(t)), `a masked number in the list: ${JSON.stringify(texts)}`);
  for (const t of texts) assert.ok(!t.includes(PHONE), `full number must not be shown: ${t}`);
  assert.ok(!(await page.locator('body').innerText()).includes(PHONE), 'the full number appears nowhere on the page');

  // transcript of our conversation (newest activity first)
  await items.first().click();
  const transcript = page.getByTestId('transcript');
  await until(async () => (await transcript.innerText()).includes(QUESTION), { what: 'the question in the transcript' });
  await until(async () => (await transcript.locator('.t-row.bot').count()) >= 1, { what: 'a bot message in the transcript' });
  assert.ok((await transcript.innerText()).includes('Sumber:'), 'sources shown in the transcript');

  // charts are inline SVG drawn by the page
  await until(async () => (await page.locator('[data-testid="chart-messages"] svg').count()) === 1, { what: 'messages chart' });
  await until(async () => (await page.locator('[data-testid="chart-reply"] svg').count()) === 1, { what: 'reply-time chart' });
  assert.ok((await page.locator('[data-testid="chart-messages"] svg rect.bar').count()) >= 1, 'at least one bar for the last 48 h');
  assert.ok(await page.getByTestId('errors-list').isVisible(), 'errors list shown');
  await page.getByTestId('conversation-list').scrollIntoViewIfNeeded();
  await screenshot(page, 'admin-conversations');
  await page.locator('#ringkasan').scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot(page, 'admin-overview');

  // reload keeps the session (sessionStorage)
  await page.reload();
  await until(async () => (await page.getByTestId('status-cards').innerText()).includes('Basis pengetahuan'), { what: 'dashboard after reload' });
  assert.ok(await page.getByTestId('token-input').isHidden());

  // documents: refresh and see the per-file report
  const button = page.getByTestId('refresh-button');
  await button.scrollIntoViewIfNeeded();
  await button.click();
  const report = page.getByTestId('refresh-report');
  await report.waitFor({ state: 'visible', timeout: 180_000 });
  const reportText = await report.innerText();
  assert.ok(!/Gagal/.test(reportText), `refresh succeeded: ${reportText}`);
  assert.ok(reportText.includes('klinik-sehat-bersama.md'), `indexed files listed: ${reportText}`);
  assert.ok((await report.getByTestId('report-file').count()) >= 1);
  assert.equal(await button.isDisabled(), false, 'button enabled again');
  await screenshot(page, 'admin-refresh-report');

  // logout
  await page.getByTestId('logout-button').click();
  await page.getByTestId('token-input').waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => sessionStorage.getItem('waAdmin.token')), null, 'logout clears the token');

  assert.deepEqual(problems, [], 'no page errors and no external requests');
  await context.close();
});

test('admin at 375 px has no horizontal scrolling', { timeout: 60_000 }, async () => {
  const { page, context, problems } = await newPage(browser, server.baseUrl, { width: 375, height: 812, mobile: true });
  await page.goto(server.baseUrl + '/admin');
  await signInAdmin(page);
  await until(async () => (await page.locator('[data-testid="chart-messages"] svg').count()) === 1, { what: 'chart' });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow}px)`);
  await screenshot(page, 'admin-mobile-375');
  assert.deepEqual(problems, []);
  await context.close();
});


test('admin: a refused reply is listed with its error; Retry (pressed twice) sends it once and it leaves the list', { timeout: 120_000 }, async () => {
  const answer = 'Jawaban uji: ' + WA_QUESTION;
  const res = await sendWhatsAppText(server.baseUrl, APP_SECRET, { from: WA_PHONE, id: 'wamid.browser.outbox.1', text: WA_QUESTION });
  assert.equal(res.status, 200, 'the signed webhook is accepted');
  const failed = await until(async () => (await outbox()).find((m) => m.text === answer && m.state === 'failed_permanent'),
    { timeoutMs: 30_000, what: 'the refused reply in GET /api/admin/outbox' });
  assert.equal(graph.refused, 1, 'a permanent refusal is not retried by the server');

  const { page, context, problems } = await newPage(browser, server.baseUrl, { width: 1280, height: 900 });
  await page.goto(server.baseUrl + '/admin');
  await signInAdmin(page);

  // the status area counts it, highlighted
  const outboxCard = page.getByTestId('outbox-card');
  await until(async () => (await outboxCard.locator('dd.alert').count()) === 1, { what: 'a highlighted failed count' });
  assert.match(await outboxCard.innerText(), /1 tidak terkirim/);

  // the row: masked person, channel, text, attempts, code and error
  const row = page.locator(`[data-testid="outbox-list"] [data-testid="outbox-row"][data-id="${failed.id}"]`);
  await row.waitFor({ state: 'visible' });
  assert.equal(await row.getAttribute('data-state'), 'failed_permanent');
  const rowText = await row.innerText();
  for (const part of [answer, 'WhatsApp', 'Gagal', 'Percobaan: 1', `Kode ${REFUSED}`, `Graph error ${REFUSED}`]) {
    assert.ok(rowText.includes(part), `"${part}" in the row: ${rowText}`);
  }
  assert.match(rowText, /\d+\*{3,}\d+/, 'a masked number');
  assert.ok(!(await page.locator('body').innerText()).includes(WA_PHONE), 'the full number appears nowhere on the page');
  assert.match(await page.locator('.outbox-help').innerText(), /131047/, 'the page says what to do with a dead message');
  await row.scrollIntoViewIfNeeded();
  await screenshot(page, 'admin-outbox-failed');

  // the row fits a phone screen
  const mobile = await newPage(browser, server.baseUrl, { width: 375, height: 812, mobile: true });
  await mobile.page.goto(server.baseUrl + '/admin');
  await signInAdmin(mobile.page);
  const mobileRow = mobile.page.locator(`[data-testid="outbox-row"][data-id="${failed.id}"]`);
  await mobileRow.waitFor({ state: 'visible' });
  await mobileRow.scrollIntoViewIfNeeded();
  const overflow = await mobile.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at 375 px with a failed message (overflow ${overflow}px)`);
  await screenshot(mobile.page, 'admin-outbox-mobile-375');
  assert.deepEqual(mobile.problems, []);
  await mobile.context.close();

  // Graph accepts again; a double click on Retry
  graph.accept();
  await row.getByTestId('outbox-retry').dblclick();
  const followed = page.locator(`[data-testid="outbox-followed"] [data-testid="outbox-row"][data-id="${failed.id}"]`);
  await until(async () => (await followed.count()) === 1 && (await followed.getAttribute('data-state')) === 'sent',
    { timeoutMs: 30_000, what: 'the retried message shown as sent' });
  assert.match(await followed.getByTestId('outbox-state').innerText(), /Terkirim/);
  assert.equal(await row.count(), 0, 'the message left the failed list');
  await sleep(2000);
  assert.deepEqual(graph.texts.filter((t) => t === answer), [answer], 'the fake Graph got the text exactly once');
  assert.equal((await outbox()).filter((m) => m.id === failed.id).length, 0, 'nothing left to retry');
  await until(async () => (await outboxCard.locator('dd.alert').count()) === 0, { timeoutMs: 20_000, what: 'the failed count back to zero' });
  await screenshot(page, 'admin-outbox-retried');

  assert.deepEqual(problems, [], 'no page errors and no external requests');
  await context.close();
});

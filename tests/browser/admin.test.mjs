// The admin page at "/admin": token login, status cards, masked conversations + transcript, document refresh, charts.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  ADMIN_TOKEN, launchBrowser, newPage, screenshot, startServer, until,
} from './harness.mjs';

const PHONE = '6285712340042';
const QUESTION = 'jam buka poli gigi hari sabtu?';

let server;
let browser;

before(async () => {
  server = await startServer({ name: 'admin-server' });
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
  await page.getByTestId('token-input').fill(ADMIN_TOKEN);
  await page.getByTestId('login-button').click();
  await until(async () => (await page.getByTestId('status-cards').innerText()).includes('Basis pengetahuan'), { what: 'dashboard' });
  await until(async () => (await page.locator('[data-testid="chart-messages"] svg').count()) === 1, { what: 'chart' });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow}px)`);
  await screenshot(page, 'admin-mobile-375');
  assert.deepEqual(problems, []);
  await context.close();
});

// The admin page's inbox: a customer asking for a person appears live, an agent answers from the page (once, however
// often the button is pressed), the bot stays quiet while paused and answers again after Resume; outside WhatsApp's
// 24-hour window the reply box says why before anyone types.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  SCREENSHOT_DIR, launchBrowser, newPage, screenshot, sendWhatsAppText, signInAdmin, sleep, startFakeGraph, startServer, until,
} from './harness.mjs';

const APP_SECRET = 'browser-inbox-secret';
const PHONE = '6281377700012';
const ASK = 'mau ngomong sama admin dong';
const REPLY = 'Halo kak, saya dari tim CS. Ada yang bisa dibantu?';
const WHILE_PAUSED = 'oke kak, saya tunggu infonya';
const AFTER_RESUME = 'jam buka hari sabtu?';

let server;
let browser;

// the inbox section at the top of the screen, for the screenshots
function showInbox(page) {
  return page.evaluate(() => document.getElementById('kotak-masuk').scrollIntoView());
}
let graph;
let sent = 0;

function say(text) {
  sent += 1;
  return sendWhatsAppText(server.baseUrl, APP_SECRET, { from: PHONE, id: `wamid.browser.inbox.${sent}`, text });
}

before(async () => {
  graph = await startFakeGraph();
  server = await startServer({
    name: 'inbox-server',
    env: { ...graph.env, META_APP_SECRET: APP_SECRET, META_WEBHOOK_VERIFY_TOKEN: 'browser-verify-token' },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await graph?.close();
});

test('inbox: a waiting customer shows up live, the agent replies once, the bot waits for Resume', { timeout: 180_000 }, async () => {
  const { page, context, problems } = await newPage(browser, server.baseUrl, { width: 1280, height: 900 });
  // live means from the event stream: the page never has to ask for the list
  const inboxRequests = [];
  page.on('request', (req) => { if (new URL(req.url()).pathname.startsWith('/api/admin/inbox')) inboxRequests.push(new URL(req.url()).pathname); });
  await page.goto(server.baseUrl + '/admin');
  await signInAdmin(page);
  const summary = page.getByTestId('inbox-summary');
  await until(async () => (await summary.innerText()).includes('0 menunggu CS'), { what: 'the inbox, empty' });

  // the customer asks for a person; the page is not reloaded
  assert.equal((await say(ASK)).status, 200, 'the signed webhook is accepted');
  const waiting = page.locator('[data-testid="conversation-item"][data-group="waiting"]');
  await until(async () => (await waiting.count()) === 1, { timeoutMs: 20_000, what: 'the waiting conversation, live' });
  assert.match(await waiting.getByTestId('waiting-badge').innerText(), /Menunggu CS/);
  assert.equal(await page.getByTestId('inbox-tab-count').innerText(), '1');
  assert.match(await page.title(), /^\(1\) /, 'the tab title counts who waits');
  await until(async () => /1 menunggu CS/.test(await page.getByTestId('inbox-card').innerText()), { what: 'the status card counting it' });
  assert.match(await waiting.innerText(), /\d+\*{3,}\d+/, 'a masked number');
  assert.ok(!(await page.locator('body').innerText()).includes(PHONE), 'the full number appears nowhere on the page');
  await until(() => graph.texts.length === 1, { what: 'the handoff answer' });
  assert.match(graph.texts[0], /teruskan ke tim kami/, 'the bot answered with prompts/handoff.md');
  assert.equal(server.fake.count, 0, 'asking for a person never reaches the LLM');
  await showInbox(page);
  await screenshot(page, 'inbox-waiting');

  // open it: the transcript, the state, an open reply box; opening reads it
  await waiting.click();
  const transcript = page.getByTestId('transcript');
  await until(async () => (await transcript.innerText()).includes(ASK), { what: 'the question in the transcript' });
  assert.match(await page.getByTestId('mode-state').innerText(), /Menunggu CS/);
  const input = page.getByTestId('reply-input');
  assert.equal(await input.isEnabled(), true, 'the window is open');
  assert.ok(await page.getByTestId('reply-notice').isHidden());
  await until(async () => (await waiting.getByTestId('unread-count').count()) === 0, { what: 'unread back to zero' });

  // the reply, with the button pressed twice
  await input.fill(REPLY);
  await page.getByTestId('reply-send').dblclick();
  await until(() => graph.texts.includes(REPLY), { what: 'the agent reply at the fake Graph' });
  const agentRow = transcript.locator('.t-row.agent', { hasText: REPLY });
  await until(async () => (await agentRow.count()) === 1, { what: 'the agent reply in the transcript' });
  await until(async () => /terkirim/.test(await agentRow.getByTestId('message-status').innerText()), { what: 'its delivery state' });
  assert.equal(await input.inputValue(), '', 'the box is emptied once sent');
  const item = page.locator('[data-testid="conversation-item"]', { hasText: /\d+\*{3,}\d+/ }).first();
  await until(async () => (await item.getAttribute('data-group')) === 'paused', { what: 'no longer waiting, paused' });
  assert.match(await page.getByTestId('mode-state').innerText(), /Bot dijeda/);
  await showInbox(page);
  await screenshot(page, 'inbox-replied');

  // the customer writes on: the page shows it, the bot does not answer
  const llmBefore = server.fake.count;
  assert.equal((await say(WHILE_PAUSED)).status, 200);
  await until(async () => (await transcript.innerText()).includes(WHILE_PAUSED), { timeoutMs: 20_000, what: 'the new message, live' });
  await sleep(3000); // the quiet period is 1 s
  assert.equal(server.fake.count, llmBefore, 'no LLM request while paused');
  assert.deepEqual(graph.texts.slice(1), [REPLY], 'nothing but the agent reply went out after the handoff answer');

  // Resume: the next message is the bot's again
  await page.getByTestId('resume-button').click();
  await until(async () => /Bot aktif/.test(await page.getByTestId('mode-state').innerText()), { what: 'the bot back' });
  await until(async () => /Bot dilanjutkan oleh admin/.test(await transcript.getByTestId('handoff-event').last().innerText()),
    { what: 'the resume in the transcript' });
  assert.equal((await say(AFTER_RESUME)).status, 200);
  const answer = 'Jawaban uji: ' + AFTER_RESUME;
  await until(() => graph.texts.includes(answer), { timeoutMs: 30_000, what: 'the bot answer after Resume' });
  await until(async () => (await transcript.locator('.t-row.bot', { hasText: answer }).count()) === 1, { what: 'the answer in the transcript' });
  await sleep(1500);
  assert.deepEqual(graph.texts.filter((t) => t === answer || t === REPLY), [REPLY, answer], 'each sent once');
  await showInbox(page);
  await screenshot(page, 'inbox-resumed');

  assert.deepEqual([...new Set(inboxRequests)], ['/api/admin/inbox/events'], 'everything came through the stream');
  assert.deepEqual(problems, [], 'no page errors and no external requests');
  await context.close();
});

test('inbox: past the 24-hour window the reply box says why before anyone types, and fits 375 px', { timeout: 60_000 }, async () => {
  const { page, context, problems } = await newPage(browser, server.baseUrl, { width: 375, height: 812, mobile: true });
  // The customer wrote minutes ago; the transcript is made to say a day has passed.
  await page.route(/\/api\/admin\/conversations\/\d+$/, async (route) => {
    const response = await route.fetch();
    const transcript = await response.json();
    transcript.windowOpenUntil = Date.now() - 60 * 60 * 1000;
    transcript.canReply = false;
    await route.fulfill({ response, json: transcript });
  });
  await page.goto(server.baseUrl + '/admin');
  await signInAdmin(page);
  const items = page.getByTestId('conversation-item');
  await until(async () => (await items.count()) >= 1, { what: 'the conversation' });
  await items.first().click();
  const notice = page.getByTestId('reply-notice');
  await notice.waitFor({ state: 'visible' });
  const text = await notice.innerText();
  assert.match(text, /24 jam/);
  assert.match(text, /131047/);
  assert.equal(await page.getByTestId('reply-input').isDisabled(), true);
  assert.equal(await page.getByTestId('reply-send').isDisabled(), true);
  await notice.scrollIntoViewIfNeeded();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow}px)`);
  await screenshot(page, 'inbox-window-closed-375');
  assert.deepEqual(problems, []);
  await context.close();
});

test('send: the admin sends a formatted message once, as previewed; a number that never wrote is refused first', { timeout: 90_000 }, async () => {
  await say('jadwal kontrol saya kapan?'); // the customer wrote today: the 24-hour window is open
  const { page, context, problems } = await newPage(browser, server.baseUrl, { width: 1280, height: 900 });
  await page.goto(server.baseUrl + '/admin#kirim');
  await signInAdmin(page);
  const to = page.getByTestId('send-to');
  const hint = page.getByTestId('send-to-hint');
  const button = page.getByTestId('send-button');

  await to.fill('0212345');
  assert.match(await hint.innerText(), /diawali 08/);
  assert.equal(await button.isDisabled(), true, 'no sending to a number the server would refuse');

  const text = '*Jadwal* kontrol _besok_ jam 09.00';
  await to.fill('0813-7770-0012');
  assert.equal(await hint.innerText(), `Dikirim ke ${PHONE}`);
  await page.getByTestId('send-text').fill(text);
  const preview = page.getByTestId('send-preview');
  assert.equal(await preview.locator('strong').innerText(), 'Jadwal');
  assert.equal(await preview.locator('em').innerText(), 'besok');
  await page.locator('#kirim').screenshot({ path: path.join(SCREENSHOT_DIR, 'admin-send-preview.png') });

  await button.click();
  await button.click({ force: true }).catch(() => {}); // a second press while the first is on its way
  const result = page.getByTestId('send-result');
  await until(async () => (await result.getAttribute('data-state')) === 'sent', { what: 'the message sent' });
  assert.equal(graph.texts.filter((t) => t === text).length, 1, 'sent once, as written');
  assert.match(await result.innerText(), /6281\*+012/, 'the number masked');

  await to.fill('0812 9999 0000');
  await page.getByTestId('send-text').fill('Halo, ini pengingat.');
  await button.click();
  const error = page.getByTestId('send-error');
  await error.waitFor({ state: 'visible' });
  assert.match(await error.innerText(), /24-hour/);
  await sleep(1000);
  assert.ok(!graph.texts.includes('Halo, ini pengingat.'), 'nothing went out to a number outside the window');
  assert.deepEqual(problems, []);
  await context.close();
});

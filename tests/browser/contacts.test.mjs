// The admin page's Kontak view: a customer's own STOP shown as "Menolak", a CSV imported with a bad line (reported
// by its line number) and a line that would undo that STOP (kept, and said so), filters, a consent changed with a
// note and shown in the consent log, and the export downloaded as CSV.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import {
  ADMIN_TOKEN, launchBrowser, newPage, screenshot, sendWhatsAppText, signInAdmin, startFakeGraph, startServer, until,
} from './harness.mjs';

const APP_SECRET = 'browser-app-secret';
const STOPPED = '6281398760077';

let server;
let browser;
let graph;

async function contact(number) {
  const res = await fetch(`${server.baseUrl}/api/admin/contacts?q=${number}`, { headers: { authorization: 'Bearer ' + ADMIN_TOKEN } });
  assert.equal(res.status, 200);
  return (await res.json()).contacts[0];
}

before(async () => {
  graph = await startFakeGraph();
  server = await startServer({
    name: 'contacts-server',
    env: { ...graph.env, META_APP_SECRET: APP_SECRET, META_WEBHOOK_VERIFY_TOKEN: 'browser-verify-token' },
  });
  browser = await launchBrowser();
  const res = await sendWhatsAppText(server.baseUrl, APP_SECRET, { from: STOPPED, id: 'wamid.browser.stop.1', text: 'STOP' });
  assert.equal(res.status, 200);
  await until(async () => (await contact(STOPPED))?.consent === 'opted_out', { what: 'the customer opted out' });
  await until(() => graph.texts.length === 1, { what: 'the one confirmation' });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await graph?.close();
});

test('admin: contacts listed, imported, filtered, consent changed with a note, exported', { timeout: 120_000 }, async () => {
  const { page, problems } = await newPage(browser, server.baseUrl, { width: 1280, height: 900 });
  await page.goto(server.baseUrl + '/admin');
  await signInAdmin(page);
  await page.getByRole('link', { name: 'Kontak' }).click();

  const rows = page.getByTestId('contact-row');
  await until(async () => (await rows.count()) === 1, { what: 'the customer who wrote STOP' });
  assert.match(await rows.first().innerText(), /6281398760077[\s\S]*Menolak/);

  const csv = '\ufeffnomor,nama,tags,consent\n' +
    '0813-9876-0077,"Santoso, Budi",pelanggan,ya\n' +
    '0212345678,Kantor,,\n' +
    '0812 1111 2222,Sari,"pelanggan,vip",ya\n';
  await page.getByTestId('contacts-file').setInputFiles({ name: 'kontak.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  const result = page.getByTestId('contacts-import');
  await until(async () => /Impor selesai/.test(await result.innerText()), { what: 'the import result' });
  const said = await result.innerText();
  assert.match(said, /1 baru, 1 diperbarui/);
  assert.match(await page.getByTestId('contacts-import-errors').innerText(), /Baris 3: number:/);
  assert.match(said, /menolak sendiri[\s\S]*Baris 2: 6281398760077/);
  await until(async () => (await rows.count()) === 2, { what: 'both contacts listed' });
  assert.equal((await contact(STOPPED)).consent, 'opted_out', 'the import did not undo the STOP');
  await screenshot(page, 'admin-contacts-import');

  await page.getByTestId('contacts-tag').fill('VIP');
  await page.getByTestId('contacts-q').press('Enter');
  await until(async () => (await rows.count()) === 1 && /Sari/.test(await rows.first().innerText()), { what: 'the tag filter' });
  await page.getByTestId('contacts-tag').fill('');
  await page.getByTestId('contacts-consent').selectOption('opted_out');
  await until(async () => (await rows.count()) === 1 && /Santoso, Budi/.test(await rows.first().innerText()), { what: 'the consent filter' });

  await rows.first().click();
  const detail = page.getByTestId('contact-detail');
  await detail.waitFor({ state: 'visible' });
  assert.match(await detail.innerText(), /menolak sendiri/);
  await page.getByTestId('contact-consent-note').fill('minta lagi lewat telepon 5/12');
  await page.getByTestId('contact-consent-form').getByRole('button').click();
  const log = page.getByTestId('consent-log');
  await until(async () => /minta lagi lewat telepon/.test(await log.innerText()), { what: 'the note in the consent log' });
  assert.match(await log.innerText(), /Setuju\s+admin\s+“minta lagi/);
  assert.match(await log.innerText(), /pelanggan sendiri/);
  assert.equal((await contact(STOPPED)).consent, 'opted_in');
  await screenshot(page, 'admin-contacts-consent');

  // the export follows the filters: those who agreed
  await page.getByTestId('contacts-consent').selectOption('opted_in');
  await until(async () => (await rows.count()) === 2, { what: 'both now agreeing' });
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('contacts-export').click()]);
  const exported = await fs.readFile(await download.path(), 'utf8');
  assert.match(exported, /^\ufeffnumber,name,tags,consent,consent_source,consent_at\r\n/);
  assert.match(exported, /6281398760077,"Santoso, Budi",pelanggan,opted_in,admin:admin,\d+/);
  assert.match(exported, /6281211112222,Sari,"pelanggan,vip",opted_in,import,\d+/);
  assert.equal(exported.trim().split('\r\n').length, 3);
  assert.deepEqual(problems, []);
});

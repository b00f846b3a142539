// The admin page's gateway views: the templates with Meta's verdicts; a template sent from Kirim pesan
// (after free text was refused outside the 24-hour window) with the values the preview showed; a campaign
// made from a CSV file, followed to 100% with its per-recipient report and CSV export; a bad CSV line
// listed as a problem with nothing created.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { launchBrowser, newPage, screenshot, signInAdmin, startFakeGraph, startServer, until } from './harness.mjs';

const TEMPLATES = [
  {
    id: '9001', name: 'tagihan', language: 'id', status: 'APPROVED', category: 'UTILITY',
    components: [
      { type: 'BODY', text: 'Halo {{1}}, tagihan *{{2}}* sudah terbit.' },
      { type: 'FOOTER', text: 'Balas STOP untuk berhenti' },
      { type: 'BUTTONS', buttons: [{ type: 'URL', text: 'Bayar', url: 'https://bayar.example/{{1}}' }] },
    ],
  },
  {
    id: '9002', name: 'pengingat', language: 'id', status: 'APPROVED', category: 'UTILITY', parameter_format: 'NAMED',
    components: [{ type: 'BODY', text: 'Halo {{nama}}, jadwal periode {{periode}} sudah terbit.' }],
  },
  {
    id: '9003', name: 'promo_natal', language: 'id', status: 'PENDING', category: 'MARKETING',
    components: [{ type: 'BODY', text: 'Diskon {{1}} untuk Anda!' }],
  },
  {
    id: '9004', name: 'promo_lama', language: 'id', status: 'REJECTED', category: 'MARKETING', rejected_reason: 'INVALID_FORMAT',
    components: [{ type: 'BODY', text: 'Promo lama' }],
  },
];

let graph;
let server;
let browser;

before(async () => {
  graph = await startFakeGraph({ templates: TEMPLATES });
  server = await startServer({ name: 'gateway-server', env: { ...graph.env, SEND_RATE_PER_SECOND: '20' } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await graph?.close();
});

async function signedIn() {
  const opened = await newPage(browser, server.baseUrl, { width: 1280, height: 900 });
  await opened.page.goto(server.baseUrl + '/admin');
  await signInAdmin(opened.page);
  return opened;
}

test('templates are listed with their status, and one is sent from Kirim pesan with its values', { timeout: 120_000 }, async () => {
  const { page, context, problems } = await signedIn();

  const items = page.getByTestId('template-item');
  await until(async () => (await items.count()) === 4, { what: 'the four templates' });
  const item = (name) => items.filter({ has: page.locator('strong', { hasText: new RegExp(`^${name}$`) }) });
  assert.equal(await item('tagihan').getByTestId('template-status').innerText(), 'Disetujui');
  assert.match(await item('tagihan').innerText(), /Perlu: Isi \{\{1\}\} · Isi \{\{2\}\} · Tombol “Bayar”: akhir alamat/);
  assert.equal(await item('promo_natal').getByTestId('template-status').innerText(), 'Menunggu tinjauan');
  assert.match(await item('promo_natal').getByTestId('template-status').getAttribute('class'), /warn/);
  assert.match(await item('promo_lama').getByTestId('template-status').getAttribute('class'), /bad/);
  assert.match(await item('promo_lama').innerText(), /Alasan Meta: INVALID_FORMAT/);
  assert.match(await page.getByTestId('templates-sync').innerText(), /Dibaca dari Meta/);
  assert.equal(await page.getByTestId('template-form').isVisible(), false, 'Cloud API templates are made at Meta');
  await page.getByTestId('templates-refresh').click();
  await until(async () => /Dibaca dari Meta/.test(await page.getByTestId('templates-sync').innerText()), { what: 'the refresh' });
  await page.evaluate(() => document.getElementById('template').scrollIntoView());
  await screenshot(page, 'gateway-templates');

  // free text to someone who never wrote: refused before sending, with a way to the template
  await page.evaluate(() => document.getElementById('kirim').scrollIntoView());
  await page.getByTestId('send-to').fill('0812-5550-0001');
  await page.getByTestId('send-text').fill('Halo, tagihan Anda sudah terbit');
  await page.getByTestId('send-button').click();
  const error = page.getByTestId('send-error');
  await until(async () => /24 jam/.test(await error.innerText()), { what: 'the outside-window refusal' });
  await page.getByTestId('send-use-template').click();
  assert.equal(await page.getByTestId('send-mode-template').isChecked(), true);
  assert.equal(await page.getByTestId('send-text').isVisible(), false);

  // only approved templates are offered
  const offered = await page.getByTestId('send-template').locator('option').allInnerTexts();
  assert.deepEqual(offered.slice(1).map((o) => o.split(' · ')[0]).sort(), ['pengingat', 'tagihan']);
  await page.getByTestId('send-template').selectOption('tagihan|id');
  const values = page.getByTestId('send-value');
  assert.equal(await values.count(), 3, 'two body values and the button suffix');
  const preview = page.getByTestId('send-preview');
  assert.match(await preview.innerText(), /Halo \{\{1\}\}/, 'a value not given yet shows as its placeholder');
  await values.nth(0).fill('Budi');
  await values.nth(1).fill('Desember 2026');
  await values.nth(2).fill('INV-42');
  const shown = await preview.innerText();
  assert.match(shown, /Halo Budi, tagihan Desember 2026 sudah terbit\./);
  assert.equal(await preview.locator('strong', { hasText: 'Desember 2026' }).count(), 1, 'WhatsApp bold, as the customer sees it');
  assert.match(shown, /Balas STOP untuk berhenti/);
  assert.match(shown, /Bayar\s*https:\/\/bayar\.example\/INV-42/);
  await screenshot(page, 'gateway-send-template');

  // a double click sends once
  await page.getByTestId('send-button').dblclick();
  await until(() => graph.templateSends.length === 1, { what: 'the template at Graph' });
  const sent = graph.templateSends[0];
  assert.equal(sent.to, '6281255500001');
  assert.equal(sent.template.name, 'tagihan');
  assert.equal(sent.template.language.code, 'id');
  assert.deepEqual(sent.template.components, [
    { type: 'body', parameters: [{ type: 'text', text: 'Budi' }, { type: 'text', text: 'Desember 2026' }] },
    { type: 'button', sub_type: 'url', index: '0', parameters: [{ type: 'text', text: 'INV-42' }] },
  ]);
  await until(async () => (await page.getByTestId('send-result').getAttribute('data-state')) === 'sent', { what: 'the send result: sent' });
  assert.equal(await page.getByTestId('send-error').isVisible(), false);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(graph.templateSends.length, 1, 'sent once');

  assert.deepEqual(problems, []);
  await context.close();
});

test('a campaign from a CSV file runs to 100%, with its report and CSV; a bad line creates nothing', { timeout: 180_000 }, async () => {
  const { page, context, problems } = await signedIn();
  await page.evaluate(() => document.getElementById('kampanye').scrollIntoView());
  const list = page.getByTestId('campaigns-list');
  await until(async () => /Belum ada kampanye/.test(await list.innerText()), { what: 'the empty campaign list' });

  const form = page.getByTestId('campaign-form');
  await form.getByTestId('cf-name').fill('Jadwal Desember');
  await until(async () => (await page.getByTestId('cf-template').locator('option').count()) === 3, { what: 'the approved templates' });
  await page.getByTestId('cf-template').selectOption('pengingat|id');
  await page.getByTestId('cf-hours').fill('always');

  // a bad number on line 3 and a missing value on line 4: listed by line, nothing created
  const bad = 'nomor,nama,periode\n081255510001,Ani,Desember\n0212345,Budi,Desember\n081255510003,Citra,\n';
  await page.getByTestId('cf-file').setInputFiles({ name: 'salah.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
  await until(async () => /salah\.csv: 3 penerima/.test(await page.getByTestId('cf-csv-summary').innerText()), { what: 'the CSV read' });
  await page.getByTestId('cf-submit').click();
  const problemList = page.getByTestId('cf-problems').getByTestId('problem-list');
  await until(() => problemList.isVisible(), { what: 'the problems' });
  const listed = await problemList.locator('li').allInnerTexts();
  assert.ok(listed.some((p) => /^Baris 3: to:/.test(p)), listed.join('\n'));
  assert.ok(listed.some((p) => /^Baris 4: body: \{\{periode\}\}/.test(p)), listed.join('\n'));
  assert.equal(await problemList.evaluate((n) => getComputedStyle(n).overflowY), 'auto', 'a long list scrolls');
  assert.doesNotMatch(await page.getByTestId('cf-problems').innerText(), /recipients\[/, 'each problem once, by CSV line');
  await screenshot(page, 'gateway-campaign-problems');
  const none = await (await fetch(server.baseUrl + '/api/campaigns', { headers: { Authorization: 'Bearer browser-test-token' } })).json();
  assert.deepEqual(none.campaigns, [], 'nothing created');

  // the good file: columns found by name, the first recipient's message previewed, then created
  const csv = 'Nomor,Nama,Periode\n081255510001,Ani,"Desember, minggu 1"\n081255510002,Budi,Desember\n081255510003,Citra,Januari\n';
  await page.getByTestId('cf-file').setInputFiles({ name: 'jadwal.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await until(async () => /jadwal\.csv: 3 penerima/.test(await page.getByTestId('cf-csv-summary').innerText()), { what: 'the CSV read' });
  const columns = page.getByTestId('cf-column');
  assert.deepEqual(await columns.evaluateAll((s) => s.map((x) => x.options[x.selectedIndex].text)), ['Kolom nama', 'Kolom periode']);
  assert.match(await page.getByTestId('cf-preview').innerText(), /Halo Ani, jadwal periode Desember, minggu 1 sudah terbit\./);
  await page.getByTestId('cf-submit').click();
  await until(async () => /dibuat untuk 3 penerima/.test(await page.getByTestId('cf-result').innerText()), { what: 'the campaign created' });
  assert.equal(await page.getByTestId('cf-problems').isVisible(), false);

  const item = page.getByTestId('campaign-item').first();
  await until(async () => (await item.getByTestId('campaign-progress').getAttribute('aria-valuenow')) === '100', { timeoutMs: 60_000, what: 'the progress bar at 100%' });
  await until(async () => /terkirim 3/.test(await item.getByTestId('campaign-counts').innerText()), { timeoutMs: 60_000, what: 'three sent' });
  await until(() => graph.templateSends.filter((s) => s.template.name === 'pengingat').length === 3, { what: 'three sends at Graph' });
  const first = graph.templateSends.find((s) => s.to === '6281255510001');
  assert.deepEqual(first.template.components, [{ type: 'body', parameters: [
    { type: 'text', parameter_name: 'nama', text: 'Ani' }, { type: 'text', parameter_name: 'periode', text: 'Desember, minggu 1' },
  ] }]);
  assert.match(await item.innerText(), /Jadwal Desember/);
  assert.match(await item.innerText(), /3 dari 3 dilepas \(100%\)/);

  await item.getByTestId('campaign-open-report').click();
  const rows = page.getByTestId('report-row');
  await until(async () => (await rows.count()) === 3, { what: 'three report rows' });
  await until(async () => !/belum dilepas|di antrean/.test(await page.getByTestId('report-body').innerText()), { timeoutMs: 30_000, what: 'the report settled' });
  assert.match(await rows.nth(0).innerText(), /6281255510001\s+Ani\s+terkirim/);
  await screenshot(page, 'gateway-campaign');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('report-export').click()]);
  assert.match(download.suggestedFilename(), /^kampanye-\d+\.csv$/);
  const exported = await fs.readFile(await download.path(), 'utf8');
  assert.match(exported, /^number,name,status,error_code,error,message_id,released_at,updated_at\n/);
  assert.match(exported, /6281255510002,Budi,sent,,,wamid\.fake\.t\d+,\d+,\d+/);
  assert.equal(exported.trim().split('\n').length, 4);

  assert.deepEqual(problems, []);
  await context.close();
});

test('a scheduled campaign by tag can be paused, resumed and cancelled', { timeout: 120_000 }, async () => {
  const imported = await fetch(server.baseUrl + '/api/admin/contacts/import', {
    method: 'POST', headers: { Authorization: 'Bearer browser-test-token', 'Content-Type': 'text/csv' },
    body: 'nomor,nama,tags\n081255520001,Dewi,pelanggan\n',
  });
  assert.equal(imported.status, 200, await imported.text());
  const { page, context, problems } = await signedIn();
  await page.evaluate(() => document.getElementById('kampanye').scrollIntoView());
  await page.getByTestId('cf-name').fill('Jadwal nanti');
  await until(async () => (await page.getByTestId('cf-template').locator('option').count()) === 3, { what: 'the approved templates' });
  await page.getByTestId('cf-template').selectOption('pengingat|id');
  await page.getByTestId('cf-source-tag').check();
  assert.equal(await page.getByTestId('cf-file').isVisible(), false);
  await page.getByTestId('cf-tag').fill('pelanggan');
  const shared = page.getByTestId('cf-value');
  await shared.nth(0).fill('{nama}');
  await shared.nth(1).fill('Maret');
  assert.match(await page.getByTestId('cf-preview').innerText(), /Halo Nama Kontak, jadwal periode Maret sudah terbit\./);
  await page.getByTestId('cf-when-at').check();
  await page.getByTestId('cf-at').fill('2030-01-07T09:00');
  await page.getByTestId('cf-hours').fill('always');
  await page.getByTestId('cf-holidays').fill('2030-01-01, 2030-12-25');
  await page.getByTestId('cf-submit').click();
  await until(async () => /Jadwal nanti.*dibuat untuk 1 penerima/.test(await page.getByTestId('cf-result').innerText()), { what: 'the campaign by tag' });
  const item = page.getByTestId('campaign-item').filter({ hasText: 'Jadwal nanti' });
  await until(async () => (await item.getAttribute('data-state')) === 'scheduled', { what: 'scheduled' });
  assert.match(await item.innerText(), /2030/);
  assert.match(await item.innerText(), /libur 2030-01-01, 2030-12-25/);
  await item.getByTestId('campaign-pause').click();
  await until(async () => (await item.getAttribute('data-state')) === 'paused', { what: 'paused' });
  await item.getByTestId('campaign-resume').click();
  await until(async () => (await item.getAttribute('data-state')) !== 'paused', { what: 'resumed' });
  await item.getByTestId('campaign-cancel').click();
  await until(async () => (await item.getAttribute('data-state')) === 'cancelled', { what: 'cancelled' });
  assert.equal(await item.getByTestId('campaign-cancel').count(), 0, 'nothing left to do but read the report');
  assert.deepEqual(problems, []);
  await context.close();
});

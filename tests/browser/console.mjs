// Drives the admin console in headless chromium, as an admin would: sign in, approve one
// KYC submission and reject another with a reason, suspend and reinstate a user, hide a
// listing and a review, and find every action in the audit log. Data is seeded through
// the public API first. Run by scripts/browser.sh, which starts the server.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const ADMIN_EMAIL = process.env.ADMIN_EMAIL;
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD;
const SHOTS = process.env.SCREENSHOT_DIR;
const PASSWORD = 'correct horse battery';

async function api(method, path, token, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload = body;
  if (body && !(body instanceof FormData)) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const response = await fetch(BASE + path, { method, headers, body: payload });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function user(email, fullName, role) {
  await api('POST', '/api/v1/auth/register', null, { email, password: PASSWORD, full_name: fullName, role });
  return (await api('POST', '/api/v1/auth/login', null, { email, password: PASSWORD })).access_token;
}

async function submitKyc(token, documentType, bytes, contentType, name) {
  const form = new FormData();
  form.append('document_type', documentType);
  form.append('file', new Blob([bytes], { type: contentType }), name);
  return api('POST', '/api/v1/workers/me/kyc', token, form);
}

function listing(token, title, city) {
  return api('POST', '/api/v1/services', token, {
    title, description: `${title}, done properly`, category: 'home', price_cents: 4500,
    pricing_unit: 'hourly', city,
  });
}

/** A document to review: a rendered page, as a scan would be. */
async function renderDocument(browser, title, name) {
  const page = await browser.newPage({ viewport: { width: 640, height: 400 } });
  await page.setContent(`<body style="margin:0;font-family:sans-serif;background:#e9eef5">
    <div style="margin:24px;padding:24px;border:2px solid #5a6b85;border-radius:12px;background:#fff;height:300px">
      <div style="font-size:28px;font-weight:bold;color:#23395d">${title}</div>
      <div style="margin-top:24px;font-size:18px">Name: ${name}</div>
      <div style="font-size:18px">Number: X1234567</div>
      <div style="font-size:18px">Valid until: 2031-05-01</div></div></body>`);
  const png = await page.screenshot();
  const pdf = await page.pdf({ width: '640px', height: '400px', printBackground: true });
  await page.close();
  return { png, pdf };
}

async function seed(browser) {
  const admin = (await api('POST', '/api/v1/auth/login', null, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD })).access_token;
  const ana = await user('ana@example.com', 'Ana Costa', 'worker');
  const bruno = await user('bruno@example.com', 'Bruno Lima', 'worker');
  const dora = await user('dora@example.com', 'Dora Reis', 'worker');
  const carla = await user('carla@example.com', 'Carla Nunes', 'client');

  // Dora is approved already, has a listing, a completed job and a review to moderate.
  const doraDoc = await renderDocument(browser, 'PASSPORT', 'Dora Reis');
  const doraKyc = await submitKyc(dora, 'passport', doraDoc.png, 'image/png', 'passport.png');
  await api('POST', `/api/v1/admin/kyc/${doraKyc.id}/approve`, admin);
  const piano = await listing(dora, 'Piano lessons', 'Porto');
  const tomorrow = new Date(Date.now() + 24 * 3600 * 1000).toISOString();
  const job = await api('POST', '/api/v1/jobs', carla, {
    service_id: piano.id, scheduled_at: tomorrow, address: 'Rua das Flores 1', notes: 'Beginner',
  });
  for (const action of ['accept', 'start', 'complete']) {
    await api('POST', `/api/v1/jobs/${job.id}/${action}`, dora);
  }
  await api('POST', `/api/v1/jobs/${job.id}/review`, carla, {
    rating: 1, comment: 'Dora is a fraud, call 555-0100 for a better teacher!',
  });

  // Two submissions await review, oldest first: Ana's scan (an image), Bruno's PDF.
  const anaDoc = await renderDocument(browser, 'PASSPORT', 'Ana Costa');
  await submitKyc(ana, 'passport', anaDoc.png, 'image/png', 'passport.png');
  const brunoDoc = await renderDocument(browser, 'NATIONAL ID', 'Bruno Lima');
  await submitKyc(bruno, 'national_id', brunoDoc.pdf, 'application/pdf', 'id.pdf');
  await listing(ana, 'Garden care', 'Lisbon');
}

const problems = [];
let shot = 0;
async function screenshot(page, name) {
  shot += 1;
  const file = join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`  ${file}`);
}

async function notice(page, text) {
  await page.getByRole('status').filter({ hasText: text }).waitFor();
}

function row(page, text) {
  return page.getByRole('row').filter({ hasText: text });
}

const started = Date.now();
await mkdir(SHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ['--no-sandbox'],
});
try {
  await seed(browser);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, javaScriptEnabled: false });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()} (${msg.location().url})`); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });

  console.log('sign in');
  await page.goto(`${BASE}/admin/login`);
  await screenshot(page, 'login');
  await page.getByLabel('Email').fill(ADMIN_EMAIL);
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  await page.getByText('KYC submissions awaiting review').waitFor();
  await screenshot(page, 'dashboard');

  console.log('approve an image submission');
  await page.getByRole('link', { name: 'KYC', exact: true }).click();
  await page.getByRole('heading', { name: 'KYC' }).waitFor();
  await screenshot(page, 'kyc-queue');
  await row(page, 'ana@example.com').getByRole('link', { name: 'Review' }).click();
  const image = page.locator('.document img');
  await image.waitFor();
  if (!(await image.evaluate((img) => img.complete && img.naturalWidth > 0))) {
    throw new Error('the submitted image did not load');
  }
  await screenshot(page, 'kyc-review-image');
  await page.getByRole('button', { name: 'Approve' }).click();
  await notice(page, 'Approved the passport');
  await screenshot(page, 'kyc-approved');

  console.log('reject a PDF submission with a reason');
  await row(page, 'bruno@example.com').getByRole('link', { name: 'Review' }).click();
  await page.locator('.document iframe').waitFor();
  await screenshot(page, 'kyc-review-pdf');
  await page.getByRole('button', { name: 'Reject' }).click();
  // The reason is required: the browser itself refuses the empty form.
  await page.getByRole('heading', { name: 'KYC review' }).waitFor();
  await page.getByLabel('Reason').fill('The scan is too blurry to read the number');
  await page.getByRole('button', { name: 'Reject' }).click();
  await notice(page, 'Rejected the national_id');
  await screenshot(page, 'kyc-rejected');

  console.log('suspend and reinstate a user');
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByLabel('Search').fill('carla');
  await page.getByRole('button', { name: 'Filter' }).click();
  await row(page, 'carla@example.com').getByLabel('Reason').fill('Abusive messages to workers');
  await row(page, 'carla@example.com').getByRole('button', { name: 'Suspend' }).click();
  await notice(page, 'Suspended carla@example.com');
  await screenshot(page, 'users-suspended');
  await row(page, 'carla@example.com').getByRole('button', { name: 'Reinstate' }).click();
  await notice(page, 'Reinstated carla@example.com');
  await screenshot(page, 'users-reinstated');

  console.log('hide a listing');
  await page.getByRole('link', { name: 'Listings' }).click();
  await page.getByLabel('Find').fill('garden');
  await page.getByRole('button', { name: 'Find' }).click();
  await row(page, 'Garden care').getByLabel('Reason').fill('Photos of someone else\'s garden');
  await row(page, 'Garden care').getByRole('button', { name: 'Hide' }).click();
  await notice(page, 'Hid the listing “Garden care”');
  await screenshot(page, 'listing-hidden');

  console.log('hide a review');
  await page.getByRole('link', { name: 'Reviews' }).click();
  await row(page, 'fraud').getByLabel('Reason').fill('Personal attack and advertising');
  await row(page, 'fraud').getByRole('button', { name: 'Hide' }).click();
  await notice(page, 'Hid a 1-star review');
  await screenshot(page, 'review-hidden');

  console.log('find every action in the audit log');
  await page.getByRole('link', { name: 'Audit log' }).click();
  for (const [action, reason] of [
    ['kyc_approved', null],
    ['kyc_rejected', 'The scan is too blurry to read the number'],
    ['user_suspended', 'Abusive messages to workers'],
    ['user_reinstated', null],
    ['service_hidden', 'Photos of someone else\'s garden'],
    ['review_hidden', 'Personal attack and advertising'],
  ]) {
    const entry = page.getByRole('row').filter({ hasText: action });
    if ((await entry.count()) === 0) throw new Error(`no ${action} in the audit log`);
    if (reason) await entry.filter({ hasText: reason }).first().waitFor();
  }
  await screenshot(page, 'audit-log');

  console.log('sign out');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await notice(page, 'Signed out');
  await page.goto(`${BASE}/admin/`);
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  await screenshot(page, 'signed-out');

  if (problems.length > 0) throw new Error(`problems in the browser:\n${problems.join('\n')}`);
  console.log(`browser tests passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} finally {
  await browser.close();
}

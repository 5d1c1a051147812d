// The headless browser check of the demo (run by check.sh, which builds and serves it):
// loads the page in Debian's chromium-headless-shell with WebGPU on, and checks that
//  1. ring8's chains are drawn onto its modes (>= 90 % of the canvas texture's brightness
//     within 0.8 of them after 60 frames of 8 ULA steps) with no readback of chain state, and
//     saves a screenshot;
//     the chains read back with read_state() (a promise) lie within 3 sigma of a mode, and
//     the blocking readback is refused with an error instead of hanging the page;
//  2. an uploaded picture becomes the energy and its chains are drawn;
//  3. a file that is not a picture gives a message on the page, not a crash;
//  4. the live scene: with the blob the page draws held on the left, then (a new page) on the
//     right, >= 80 % of the drawn brightness is on that half (the blob holds 89 % of its mass
//     there), with no readback of chain state;
//  5. without WebGPU (Chromium's default here: no adapter) the page says so.
// Headless Chromium here cannot show or read back a WebGPU canvas (its GPU process fails to
// make the canvas's shared image: "Could not find SharedImageBackingFactory ... WebgpuSwapChain
// Texture" with SwiftShader, which then loses the device; "Unable to initialize SkSurface" with
// ANGLE on Vulkan, where the device survives). So the page runs with ?read=texture and the
// ANGLE-on-Vulkan flags: the summary comes from the canvas texture copied back by WebGPU and is
// shown in a 2-D canvas, which is what the screenshot shows. 6. records what the default
// flags do (not a failure: the compositor, not the demo).
// Usage: node check.mjs URL SCREENSHOT.png PICTURE.png
import puppeteer from 'puppeteer-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [url, screenshot, picture] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium-headless-shell';
// No network here: nothing Chromium would fetch on its own.
const quiet = ['--no-sandbox', '--disable-gpu-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run'];
const compositor = ['--use-angle=vulkan', '--enable-features=Vulkan,VulkanFromANGLE,DefaultANGLEVulkan'];
const failures = [];
const expect = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

async function withPage(webgpu, run, extra = compositor) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebm-web-check-'));
  const browser = await puppeteer.launch({
    executablePath,
    headless: 'shell',
    userDataDir,
    args: [...quiet, ...(webgpu ? ['--enable-unsafe-webgpu'] : []), ...extra],
    defaultViewport: { width: 720, height: 840 },
  });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => console.log(`  [page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => console.log(`  [page error] ${e.message}`));
    return await run(page);
  } finally {
    await browser.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

// Waits for the title to report `energy` done, or an error; returns the page's summary.
async function finished(page, energy, timeout = 180000) {
  await page.waitForFunction(
    (e) => document.title.includes('error') || (document.title.includes('done') && document.title.includes(`energy=${e}`)),
    { timeout, polling: 250 }, energy);
  const title = await page.title();
  console.log(`  title: ${title}`);
  return { title, summary: await page.evaluate(() => window.ebmSummary), message: await page.$eval('#message', (m) => m.textContent) };
}

await withPage(true, async (page) => {
  let start = Date.now();
  await page.goto(`${url}?energy=ring8&chains=16384&steps=8&frames=60&read=texture`);
  const ring = await finished(page, 'ring8');
  const s = ring.summary || {};
  console.log(`  ring8: ${JSON.stringify(s)} (${((Date.now() - start) / 1000).toFixed(1)} s with loading; ${(s.frames / s.seconds).toFixed(2)} frames/s)`);
  expect(!ring.title.includes('error'), `ring8 runs without an error ${ring.message}`);
  expect(s.lit > 0.002, `the canvas shows samples (${(100 * s.lit).toFixed(2)} % of pixels lit)`);
  expect(s.nearModes >= 0.9, `>= 90 % of the brightness lies near ring8's modes (${(100 * s.nearModes).toFixed(1)} %)`);
  expect(s.readbacks === 0, `no readback of chain state (${s.readbacks})`);
  const boxes = await Promise.all(['#readback', '#status'].map(async (id) => (await page.$(id)).boundingBox()));
  const top = boxes[0].y - 8, bottom = boxes[1].y + boxes[1].height + 8;
  await page.screenshot({ path: screenshot, clip: { x: 0, y: top, width: 720, height: bottom - top } });
  console.log(`  wrote ${screenshot}`);

  // The chains themselves, through the asynchronous readback the event loop completes.
  const direct = await page.evaluate(async () => {
    const x = await window.ebmDemo.read_state();
    let near = 0;
    for (let i = 0; i < x.length; i += 2) {
      for (let m = 0; m < 8; m++) {
        const a = m * Math.PI / 4;
        if (Math.hypot(x[i] - 2 * Math.cos(a), x[i + 1] - 2 * Math.sin(a)) < 0.75) { near++; break; }
      }
    }
    const demo = window.ebmDemo;
    return { chains: x.length / 2, near: near / (x.length / 2), readbacks: demo.readbacks(), blocking: demo.blocking_state_error() };
  });
  console.log(`  read_state: ${JSON.stringify(direct)}`);
  expect(direct.chains === 16384 && direct.readbacks === 1, 'read_state() resolves with every chain, one readback');
  expect(direct.near >= 0.95, `>= 95 % of the chains within 3 sigma of a mode (${(100 * direct.near).toFixed(1)} %)`);
  expect(direct.blocking.includes('not available in this build'), 'a blocking readback is refused, not hung');

  start = Date.now();
  const input = await page.$('#picture');
  await input.uploadFile(picture);
  const pic = await finished(page, 'picture');
  const p = pic.summary || {};
  console.log(`  picture: ${JSON.stringify(p)} (${((Date.now() - start) / 1000).toFixed(1)} s; ${(p.frames / p.seconds).toFixed(2)} frames/s)`);
  expect(!pic.title.includes('error') && p.energy === 'picture', `an uploaded picture is sampled ${pic.message}`);
  expect(p.lit > 0.002, `its chains are drawn (${(100 * p.lit).toFixed(2)} % of pixels lit)`);

  await input.uploadFile(new URL(import.meta.url).pathname);
  await page.waitForFunction(() => document.getElementById('message').textContent !== '', { timeout: 30000 });
  const message = await page.$eval('#message', (m) => m.textContent);
  console.log(`  message: ${message}`);
  expect(message.includes('not a picture'), 'a file that is not a picture gives a message');

  for (const side of ['left', 'right']) {
    start = Date.now();
    await page.goto(`${url}?energy=live&scene=${side}&chains=4096&steps=20&step=5e-4&frames=30&read=texture`);
    const live = await finished(page, 'live');
    const l = live.summary || {};
    console.log(`  live, blob on the ${side}: ${JSON.stringify(l)} (${((Date.now() - start) / 1000).toFixed(1)} s with loading)`);
    const share = side === 'left' ? l.leftShare : 1 - l.leftShare;
    expect(!live.title.includes('error') && share >= 0.8,
      `the chains follow the live scene to the ${side} (${(100 * share).toFixed(1)} % of the brightness there) ${live.message}`);
    expect(l.readbacks === 0, `no readback of chain state with the live scene (${l.readbacks})`);
  }
});

await withPage(false, async (page) => {
  await page.goto(`${url}?frames=1`);
  await page.waitForFunction(() => document.getElementById('message').textContent !== '', { timeout: 60000 });
  const message = await page.$eval('#message', (m) => m.textContent);
  console.log(`  message: ${message}`);
  expect(/WebGPU/.test(message), 'without a WebGPU adapter the page says so');
});

await withPage(true, async (page) => {
  await page.goto(`${url}?energy=ring8&frames=30`);
  try {
    await page.waitForFunction(() => document.title.includes('done') || document.title.includes('error'), { timeout: 60000 });
  } catch (e) { /* recorded below */ }
  console.log(`  default flags, the WebGPU canvas as displayed: ${await page.title()}`);
  console.log(`    ${await page.$eval('#message', (m) => m.textContent)}`);
}, []);

if (failures.length) {
  console.log(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('all browser checks passed');

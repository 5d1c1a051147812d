// Loads the wasm module (built into pkg/ by wasm-bindgen, see README.md), wires the controls
// and drives Demo.frame from requestAnimationFrame. URL parameters preset the controls, and
// `frames` stops the animation that many frames after each (re)start, for the headless check
// (check.mjs), which reads the summary from document.title and window.ebmSummary:
//   ?energy=ring8&chains=16384&steps=8&step=0.01&frames=120
// energy=live: the page draws a scene on a small 2-D canvas every frame (a blob going round, or
// held still by scene=left|right) and the chains follow it (Demo.set_live).
import init, { Demo } from './pkg/ebm_gpu_web.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const stopAfter = Number(params.get('frames') || 0);
for (const id of ['chains', 'steps', 'step']) if (params.has(id)) $(id).value = params.get(id);

function fail(text) {
  $('message').textContent = text;
  document.title = 'ebm-gpu: error: ' + text;
}

// Brightness of RGBA pixels (`width` wide): the lit share of pixels, the share of brightness
// on the left half and, for ring8, the share within 0.8 of its modes (3 sigma and a sprite, as
// in tests/particles.rs).
function summary(px, width, view, energy) {
  const height = px.length / 4 / width;
  const [cx, cy, hw] = view;
  let total = 0, near = 0, lit = 0, left = 0;
  for (let i = 0; i < px.length; i += 4) {
    const b = px[i] + px[i + 1] + px[i + 2];
    if (b === 0) continue;
    lit++;
    total += b;
    const k = i / 4, col = k % width, row = Math.floor(k / width);
    if (col < width / 2) left += b;
    if (energy !== 'ring8') continue;
    const x = cx + ((col + 0.5) / width * 2 - 1) * hw;
    const y = cy + (1 - (row + 0.5) / height * 2) * hw;
    for (let m = 0; m < 8; m++) {
      const a = m * Math.PI / 4;
      if (Math.hypot(x - 2 * Math.cos(a), y - 2 * Math.sin(a)) < 0.8) { near += b; break; }
    }
  }
  return { lit: lit / (px.length / 4), leftShare: left / Math.max(total, 1), nearModes: energy === 'ring8' ? near / Math.max(total, 1) : null };
}

// The live scene: a blob of spread 0.2 (in units of the square, to 3 sigma) at `centre`
// ([0, 1]^2, y up) on black, drawn on the scene canvas the chains follow.
function drawScene(centre) {
  const c = $('scene'), g = c.getContext('2d'), n = c.width;
  g.fillStyle = 'black';
  g.fillRect(0, 0, n, n);
  const [x, y] = centre, px = x * n, py = (1 - y) * n;
  const blob = g.createRadialGradient(px, py, 0, px, py, 0.6 * n);
  for (let k = 0; k <= 6; k++) {
    const t = k / 6, v = Math.round(255 * Math.exp(-4.5 * t * t));
    blob.addColorStop(t, `rgb(${v},${v},${v})`);
  }
  g.fillStyle = blob;
  g.fillRect(0, 0, n, n);
}

// Where the blob is at frame `f`: held at a side (scene=left|right) or once round a circle of
// radius 0.3 every 240 frames.
function sceneCentre(f) {
  const side = params.get('scene');
  if (side === 'left') return [0.25, 0.5];
  if (side === 'right') return [0.75, 0.5];
  const a = 2 * Math.PI * f / 240;
  return [0.5 + 0.3 * Math.cos(a), 0.5 + 0.3 * Math.sin(a)];
}

// The canvas as the page shows it, read through a 2-D canvas (in the task that drew it).
function canvasPixels(canvas) {
  const probe = document.createElement('canvas');
  probe.width = canvas.width; probe.height = canvas.height;
  const g = probe.getContext('2d');
  g.drawImage(canvas, 0, 0);
  return g.getImageData(0, 0, probe.width, probe.height).data;
}

async function main() {
  if (!navigator.gpu) {
    fail('This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome or Edge, ' +
         'Firefox 141+ or Safari 26+, served from localhost or https; in Chromium on Linux try --enable-unsafe-webgpu.');
    return;
  }
  await init();
  let demo, adapterName = '';
  try {
    // What the browser tells about its adapter (wgpu's adapter info is empty on the web).
    const info = (await navigator.gpu.requestAdapter())?.info;
    if (info) adapterName = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
    demo = await Demo.create($('canvas'));
    window.ebmDemo = demo; // for the console and the headless check
  } catch (e) {
    fail(String(e));
    return;
  }
  for (const name of Demo.presets()) $('energy').add(new Option(name, name));
  $('energy').add(new Option('live: a blob this page draws', 'live'));
  $('energy').value = params.get('energy') || 'ring8';
  let energy = $('energy').value;
  let picture = null; // the last uploaded picture's { width, height, rgba }
  const num = (id) => Number($(id).value);

  let running = false, sinceStart = 0, startedAt = 0;
  function start() {
    $('message').textContent = '';
    sinceStart = 0;
    startedAt = performance.now();
    try {
      $('scene').hidden = energy !== 'live';
      if (energy === 'picture') {
        demo.set_image(picture.width, picture.height, picture.rgba, $('invert').checked, num('chains'), num('step'));
      } else if (energy === 'live') {
        drawScene(sceneCentre(0));
        demo.set_live($('scene'), num('chains'), num('step'));
      } else {
        demo.set_preset(energy, num('chains'), num('step'));
      }
      if (!running) { running = true; requestAnimationFrame(tick); }
      return true;
    } catch (e) {
      fail(String(e));
      return false;
    }
  }

  $('energy').onchange = () => {
    energy = $('energy').value;
    $('step').value = { picture: 2e-6, live: 5e-4 }[energy] ?? 0.01;
    $('steps').value = { picture: 10, live: 20 }[energy] ?? 8;
    start();
  };
  $('restart').onclick = start;
  $('invert').onchange = () => { if (energy === 'picture') start(); };
  $('picture').onchange = async () => {
    const file = $('picture').files[0];
    if (!file) return;
    try {
      const bitmap = await createImageBitmap(file);
      // At most 256 pixels on the longer side: the density is a parameter block of the kernel.
      const scale = Math.min(1, 256 / Math.max(bitmap.width, bitmap.height));
      const width = Math.max(1, Math.round(bitmap.width * scale));
      const height = Math.max(1, Math.round(bitmap.height * scale));
      const c = document.createElement('canvas');
      c.width = width; c.height = height;
      const g = c.getContext('2d');
      g.fillStyle = 'white'; // transparent parts become paper
      g.fillRect(0, 0, width, height);
      g.drawImage(bitmap, 0, 0, width, height);
      picture = { width, height, rgba: new Uint8Array(g.getImageData(0, 0, width, height).data.buffer) };
    } catch (e) {
      fail(`${file.name} is not a picture this browser can decode (${e.message || e})`);
      return;
    }
    if (![...$('energy').options].some((o) => o.value === 'picture')) $('energy').add(new Option('uploaded picture', 'picture'));
    $('energy').value = 'picture';
    $('energy').onchange();
  };

  // ?read=texture: summaries from the canvas texture copied back by WebGPU (and shown in a
  // second, 2-D canvas) instead of from the displayed canvas, for browsers that cannot show or
  // read WebGPU canvases (headless Chromium here: web/README.md).
  const readTexture = params.get('read') === 'texture';
  if (readTexture) $('readback').hidden = false;
  let frames = 0, since = performance.now(), fps = 0;
  function report(px, done) {
    const [width, height] = demo.size();
    if (readTexture) {
      const g = $('readback').getContext('2d');
      g.putImageData(new ImageData(new Uint8ClampedArray(px.buffer, px.byteOffset, px.length), width, height), 0, 0);
    }
    const s = summary(px, width, demo.view(), energy);
    const seconds = (performance.now() - startedAt) / 1000;
    window.ebmSummary = { energy, frames: sinceStart, seconds, ...s, readbacks: demo.readbacks(), adapter: (adapterName || demo.adapter()), fps };
    if (energy === 'live') window.ebmSummary.scene = sceneCentre(sinceStart);
    $('status').textContent = `${(adapterName || demo.adapter())} | ${fps.toFixed(1)} frames/s | ${energy}, frame ${sinceStart}` +
      ` | lit ${(100 * s.lit).toFixed(1)} % of pixels` +
      (s.nearModes === null ? '' : ` | ${(100 * s.nearModes).toFixed(1)} % of the brightness near ring8's modes`) +
      (energy === 'live' ? ` | ${(100 * s.leftShare).toFixed(1)} % of the brightness on the left half` : '') +
      ` | readbacks of chain state ${demo.readbacks()}`;
    document.title = `ebm-gpu: ${done ? 'done' : 'running'} energy=${energy} frames=${sinceStart} lit=${s.lit.toFixed(4)}` +
      ` near_modes=${s.nearModes === null ? 'n/a' : s.nearModes.toFixed(4)} readbacks=${demo.readbacks()}`;
  }
  let reading = false; // a texture copy is on its way
  function tick() {
    // performance.now(), not the callback's time: headless Chromium's frame times lag it.
    const now = performance.now();
    if (now - since > 1000 && frames > 0) { fps = 1000 * frames / (now - since); frames = 0; since = now; }
    const stepping = stopAfter === 0 || sinceStart < stopAfter;
    try {
      const last = stopAfter > 0 && sinceStart + 1 === stopAfter;
      // The last frame waits for an earlier copy, so that its own is read.
      if (stepping && !(last && reading)) {
        const read = readTexture && !reading && (last || (sinceStart + 1) % 30 === 0);
        if (energy === 'live') drawScene(sceneCentre(sinceStart));
        if (demo.frame(num('steps'), read)) { // false: the last frame is still on the GPU
          reading ||= read;
          sinceStart++;
          frames++;
        }
      }
      const done = !stepping || (stopAfter > 0 && sinceStart >= stopAfter);
      if (readTexture) {
        const px = demo.take_pixels();
        if (px) { reading = false; report(px, done); }
        if (done && !reading) { running = false; return; }
      } else {
        if (done || sinceStart % 30 === 0) report(canvasPixels($('canvas')), done);
        if (done) { running = false; return; }
      }
    } catch (e) {
      running = false;
      // A Rust panic (its message is on the console) leaves the module unusable.
      fail(e instanceof WebAssembly.RuntimeError ? `the wasm module stopped: ${e} (see the console)` : String(e));
      return;
    }
    requestAnimationFrame(tick);
  }
  start();
}

main().catch((e) => fail(String(e)));

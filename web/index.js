// Loads the wasm module (built into pkg/ by wasm-bindgen, see README.md), wires the controls
// and drives Demo.frame from requestAnimationFrame. URL parameters preset the controls and
// stop after a number of frames for the headless check (check.sh):
//   ?energy=ring8&chains=16384&steps=8&step=0.01&frames=120
import init, { Demo } from './pkg/ebm_gpu_web.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const stopAfter = Number(params.get('frames') || 0);
for (const id of ['chains', 'steps', 'step']) if (params.has(id)) $(id).value = params.get(id);

function fail(text) {
  $('message').textContent = text;
  document.title = 'ebm-gpu: error: ' + text;
}

// Brightness of the canvas, read through a 2-D canvas: the lit share of pixels and, for ring8,
// the share of brightness within 0.8 of its modes (3 sigma and a sprite, as tests/particles.rs).
function summary(canvas, view, energy) {
  const probe = document.createElement('canvas');
  probe.width = canvas.width; probe.height = canvas.height;
  const g = probe.getContext('2d');
  g.drawImage(canvas, 0, 0);
  const px = g.getImageData(0, 0, probe.width, probe.height).data;
  const [cx, cy, hw] = view;
  let total = 0, near = 0, lit = 0;
  for (let i = 0; i < px.length; i += 4) {
    const b = px[i] + px[i + 1] + px[i + 2];
    if (b === 0) continue;
    lit++;
    total += b;
    if (energy !== 'ring8') continue;
    const k = i / 4, col = k % probe.width, row = Math.floor(k / probe.width);
    const x = cx + ((col + 0.5) / probe.width * 2 - 1) * hw;
    const y = cy + (1 - (row + 0.5) / probe.height * 2) * hw;
    for (let m = 0; m < 8; m++) {
      const a = m * Math.PI / 4;
      if (Math.hypot(x - 2 * Math.cos(a), y - 2 * Math.sin(a)) < 0.8) { near += b; break; }
    }
  }
  return { lit: lit / (px.length / 4), nearModes: energy === 'ring8' ? near / Math.max(total, 1) : null };
}

async function main() {
  if (!navigator.gpu) {
    fail('This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome or Edge, ' +
         'Firefox 141+ or Safari 26+, served from localhost or https; in Chromium on Linux try --enable-unsafe-webgpu.');
    return;
  }
  await init();
  let demo;
  try {
    demo = await Demo.create($('canvas'));
  } catch (e) {
    fail(String(e));
    return;
  }
  for (const name of Demo.presets()) $('energy').add(new Option(name, name));
  $('energy').value = params.get('energy') || 'ring8';
  let energy = $('energy').value;
  let picture = null; // the last uploaded picture's { width, height, rgba }
  const num = (id) => Number($(id).value);

  function start() {
    $('message').textContent = '';
    try {
      if (energy === 'picture') {
        demo.set_image(picture.width, picture.height, picture.rgba, $('invert').checked, num('chains'), num('step'));
      } else {
        demo.set_preset(energy, num('chains'), num('step'));
      }
      return true;
    } catch (e) {
      fail(String(e));
      return false;
    }
  }

  $('energy').onchange = () => {
    energy = $('energy').value;
    $('step').value = energy === 'picture' ? 2e-6 : 0.01;
    $('steps').value = energy === 'picture' ? 10 : 8;
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

  if (!start()) return;
  let frames = 0, since = performance.now(), fps = 0;
  const tick = (now) => {
    try {
      demo.frame(num('steps'));
    } catch (e) {
      fail(String(e));
      return;
    }
    frames++;
    if (now - since > 1000) { fps = 1000 * frames / (now - since); frames = 0; since = now; }
    const done = stopAfter > 0 && ++tick.total >= stopAfter;
    if (done || tick.total % 30 === 0) {
      // Read in the same task as the frame's submit, while the canvas texture is current.
      const s = summary($('canvas'), demo.view(), energy);
      window.ebmSummary = { frames: tick.total, ...s, readbacks: demo.readbacks(), adapter: demo.adapter() };
      $('status').textContent = `${demo.adapter()} | ${fps.toFixed(1)} frames/s | frame ${tick.total}` +
        ` | lit ${(100 * s.lit).toFixed(1)} %` + (s.nearModes === null ? '' : ` | brightness near ring8's modes ${(100 * s.nearModes).toFixed(1)} %`) +
        ` | readbacks of chain state ${demo.readbacks()}`;
      document.title = `ebm-gpu: ${done ? 'done' : 'running'} frames=${tick.total} lit=${s.lit.toFixed(4)} near_modes=${s.nearModes === null ? 'n/a' : s.nearModes.toFixed(4)} readbacks=${demo.readbacks()}`;
    }
    if (!done) requestAnimationFrame(tick);
  };
  tick.total = 0;
  requestAnimationFrame(tick);
}

main().catch((e) => fail(String(e)));

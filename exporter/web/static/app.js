// The click-to-segment page: open an image, click points or drag a box, see the mask.
//
// Each prompt change decodes the whole prompt again (every click, the box, and, with "refine",
// the previous mask's low-res logits as mask_input, as SAM2ImagePredictor allows). History
// steps make undo exact: undoing restores the previous step's result, not a re-run.
// window.sam2app is the page's API for scripts and tests: the same functions the mouse calls.

import { Sam2Web } from "./sam.js";

const $ = (id) => document.getElementById(id);
const view = $("view");
const ctx = view.getContext("2d");
const params = new URLSearchParams(location.search);
const OVERLAY = [30, 144, 255, 150]; // RGBA of mask pixels over the image
const DRAG_PX = 5; // a press that moves further than this (display pixels) is a box

const state = { sam: null, image: null, embedding: null, steps: [], busy: Promise.resolve(), error: null };

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").style.color = isError ? "#b3261e" : "";
}

function fail(err) {
  state.error = String(err && err.message ? err.message : err);
  status(state.error, true);
  console.error(err);
}

// Run one task at a time (an onnxruntime session must not be run while it is running). The
// caller's promise gets the task's result or error; the queue goes on either way, and the
// status line and error() show the last task's error.
function queue(run) {
  const done = state.busy.then(() => {
    state.error = null; // error() reports the last task's
    return run();
  });
  state.busy = done.catch(fail);
  return done;
}

// For the mouse and keys: the error is already on the status line.
const quietly = (promise) => promise.catch(() => {});

function backendText() {
  const b = state.sam.backend;
  const gpu = b.adapter ? ` (${b.adapter})` : "";
  const note = b.note ? ` (${b.note})` : "";
  return `encoder ${b.encoder}${gpu}${note}, decoder ${b.decoder}, ${b.threads} thread(s), onnxruntime-web ${b.ort}`;
}

async function start() {
  const config = await (await fetch("/config.json")).json();
  $("model").textContent = `${config.variant} · ${config.precision}`;
  status("loading the model…");
  state.sam = await Sam2Web.create(config, { ep: params.get("ep") || "auto", threads: Number(params.get("threads") || 0) });
  status(`ready: ${backendText()}; model loaded in ${(state.sam.backend.load_ms / 1000).toFixed(1)} s. Open an image.`);
}

// --- image -----------------------------------------------------------------------------------

async function openFile(file) {
  // colour values as stored, so that the page sees the bytes the Python runtime reads
  const image = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(image.width, image.height);
  const c = canvas.getContext("2d", { willReadFrequently: true });
  c.drawImage(image, 0, 0);
  const rgba = c.getImageData(0, 0, image.width, image.height).data;
  state.image = image;
  state.rgba = rgba;
  state.steps = [];
  state.embedding = null;
  view.width = image.width;
  view.height = image.height;
  fitView();
  render();
  status(`embedding ${file.name || "the image"} (${image.width}x${image.height})…`);
  state.embedding = await state.sam.embed(rgba, image.width, image.height);
  const ms = state.embedding.ms;
  status(`${backendText()}; embedded in ${((ms.preprocess + ms.encoder) / 1000).toFixed(2)} s. Click the image.`);
  render();
}

// --- prompts ----------------------------------------------------------------------------------

const last = () => state.steps[state.steps.length - 1];

async function decodeStep(clicks, box, previous) {
  const refine = $("refine").checked && previous;
  const maskInput = refine ? previous.chosenMask.lowRes : null;
  const multimask = $("multimask").checked;
  const prompt = {
    pointCoords: clicks.length ? [clicks.map(([x, y]) => [x, y])] : null,
    pointLabels: clicks.length ? [clicks.map((c) => c[2])] : null,
    boxes: box ? [box] : null,
  };
  const result = await state.sam.decode(state.embedding, { ...prompt, maskInput, multimask });
  const chosen = multimask ? argmax(result.scores) : 0;
  const step = { clicks, box, maskInput, multimask, result, chosen };
  step.chosenMask = state.sam.mask(result, chosen, state.embedding.width, state.embedding.height);
  return step;
}

// `change(clicks, box)` -> the new { clicks, box }, applied when the task runs, to the step
// before it then (a second click made while the first decodes builds on the first).
function prompt(change) {
  return queue(async () => {
    if (!state.embedding) throw new Error("open an image first");
    const prev = last();
    const { clicks, box } = change(prev ? prev.clicks : [], prev ? prev.box : null);
    state.steps.push(await decodeStep(clicks, box, prev));
    render();
  });
}

function addPoint(x, y, label) {
  return prompt((clicks, box) => ({ clicks: [...clicks, [x, y, label]], box }));
}

function setBox(x0, y0, x1, y1) {
  const box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
  return prompt((clicks) => ({ clicks, box }));
}

function undo() {
  return queue(async () => {
    state.steps.pop();
    render();
  });
}

function clear() {
  return queue(async () => {
    state.steps = [];
    render();
  });
}

// Show candidate `index` of the last step; the next click refines from it.
function choose(index) {
  return queue(async () => {
    const step = last();
    if (!step || index < 0 || index >= step.result.count) throw new Error(`no mask ${index}`);
    step.chosen = index;
    step.chosenMask = state.sam.mask(step.result, index, state.embedding.width, state.embedding.height);
    render();
  });
}

// Multimask on or off: decode the last step's prompt again, with the mask it was given.
function redoLast() {
  return queue(async () => {
    const step = state.steps.pop();
    if (!step) return;
    const before = last();
    state.steps.push(await decodeStep(step.clicks, step.box, step.maskInput ? before : null));
    render();
  });
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

// --- drawing ----------------------------------------------------------------------------------

// Show the image as large as the window allows (small images scaled up, so clicks are precise).
function fitView() {
  if (!view.width) return;
  const stage = $("stage");
  const padding = parseFloat(getComputedStyle(stage).paddingLeft) * 2;
  const room = window.innerHeight - stage.getBoundingClientRect().top - 64; // the status line stays in view
  const scale = Math.min((stage.clientWidth - padding) / view.width, Math.max(room, 240) / view.height);
  view.style.width = `${Math.floor(view.width * scale)}px`;
  view.style.height = `${Math.floor(view.height * scale)}px`;
}
window.addEventListener("resize", fitView);

function render() {
  const step = last();
  ctx.clearRect(0, 0, view.width, view.height);
  if (state.image) ctx.drawImage(state.image, 0, 0);
  if (step) {
    const { width, height } = state.embedding;
    const overlay = new ImageData(width, height);
    const bits = step.chosenMask.bits;
    for (let i = 0; i < bits.length; i++) if (bits[i]) overlay.data.set(OVERLAY, 4 * i);
    const layer = new OffscreenCanvas(width, height);
    layer.getContext("2d").putImageData(overlay, 0, 0);
    ctx.drawImage(layer, 0, 0);
    drawPrompt(step);
  }
  renderControls(step);
}

function drawPrompt(step) {
  const r = Math.max(4, 0.008 * Math.max(view.width, view.height));
  ctx.lineWidth = Math.max(2, r / 3);
  if (step.box) {
    ctx.strokeStyle = "#00c853";
    const [x0, y0, x1, y1] = step.box;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
  for (const [x, y, label] of step.clicks) {
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fillStyle = label === 1 ? "#00c853" : "#e53935";
    ctx.fill();
    ctx.strokeStyle = "#fff";
    ctx.stroke();
  }
}

function renderControls(step) {
  $("undo").disabled = !step;
  $("clear").disabled = !step;
  const choices = $("choices");
  choices.replaceChildren();
  if (step && step.result.count > 1) {
    for (let i = 0; i < step.result.count; i++) {
      const b = document.createElement("button");
      b.textContent = `mask ${i + 1}: ${step.result.scores[i].toFixed(3)}`;
      b.title = "predicted IoU";
      b.className = i === step.chosen ? "chosen" : "";
      b.onclick = () => quietly(choose(i));
      choices.append(b);
    }
  }
  const link = $("download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.removeAttribute("href");
  link.classList.toggle("disabled", !step);
  if (step) {
    maskPng(step).then((blob) => {
      if (last() === step) link.href = URL.createObjectURL(blob);
    });
    const ms = step.result.ms.toFixed(0);
    status(`${backendText()}; ${step.clicks.length} point(s)${step.box ? " + box" : ""}; mask in ${ms} ms`);
  }
}

// The chosen mask at the original size, white on black.
function maskPng(step) {
  const { width, height } = state.embedding;
  const png = new ImageData(width, height);
  const bits = step.chosenMask.bits;
  for (let i = 0; i < bits.length; i++) {
    const v = bits[i] ? 255 : 0;
    png.data[4 * i] = png.data[4 * i + 1] = png.data[4 * i + 2] = v;
    png.data[4 * i + 3] = 255;
  }
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext("2d").putImageData(png, 0, 0);
  return canvas.convertToBlob({ type: "image/png" });
}

// --- mouse and keys ---------------------------------------------------------------------------

function imagePoint(event) {
  const rect = view.getBoundingClientRect();
  return [((event.clientX - rect.left) * view.width) / rect.width, ((event.clientY - rect.top) * view.height) / rect.height];
}

let press = null;
view.addEventListener("contextmenu", (e) => e.preventDefault());
view.addEventListener("pointerdown", (e) => {
  press = { x: e.clientX, y: e.clientY, at: imagePoint(e), background: e.button === 2 || e.shiftKey };
});
view.addEventListener("pointerup", (e) => {
  if (!press || !state.embedding) return;
  const moved = Math.hypot(e.clientX - press.x, e.clientY - press.y) > DRAG_PX;
  const [x, y] = imagePoint(e);
  quietly(moved ? setBox(press.at[0], press.at[1], x, y) : addPoint(x, y, press.background ? 0 : 1));
  press = null;
});
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "z") quietly(undo());
});
$("file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) quietly(queue(() => openFile(file)));
});
$("undo").onclick = () => quietly(undo());
$("clear").onclick = () => quietly(clear());
$("multimask").onchange = () => quietly(redoLast());

// --- the page's API ---------------------------------------------------------------------------

function base64(typed) {
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

// SAM2ImagePredictor.predict's arguments (point_coords [N, 2] or [L, N, 2], point_labels,
// box [4] or [L, 4], multimask_output, mask_input as base64 float32 256 x 256) on the open
// image, outside the click history: what the parity harness runs. The masks stay in the page
// until predictedMask(i) reads them, one at a time (a big photo's are tens of megabytes).
function predict(args) {
  const nested = (a, depth) => (a == null ? null : depthOf(a) === depth ? [a] : a);
  return queue(async () => {
    if (!state.embedding) throw new Error("open an image first");
    const result = await state.sam.decode(state.embedding, {
      pointCoords: nested(args.point_coords, 2),
      pointLabels: nested(args.point_labels, 1),
      boxes: nested(args.box, 1),
      maskInput: args.mask_input ? floats(args.mask_input) : null,
      multimask: args.multimask_output !== false,
    });
    state.predicted = result;
    return summary(result);
  });
}

// Mask i (prompt * C + candidate) of the last predict(), as base64: float32 logits at the
// original size, or uint8 bits.
function predictedMask(index, asLogits) {
  const { width, height } = state.embedding;
  const mask = state.sam.mask(state.predicted, index, width, height);
  return base64(asLogits ? mask.logits : mask.bits);
}

// The encoder alone on a base64 float32 [1, 3, S, S] tensor -> base64 outputs by name.
function encodeTensor(b64) {
  return queue(async () => {
    const out = await state.sam.encodeTensor(floats(b64));
    return Object.fromEntries(Object.entries(out).map(([name, t]) => [name, base64(t.data)]));
  });
}

function floats(b64) {
  return new Float32Array(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
}

function depthOf(a) {
  let depth = 0;
  for (let x = a; Array.isArray(x); x = x[0]) depth++;
  return depth;
}

function summary(result) {
  return {
    coords: Array.from(result.coords),
    labels: result.labels,
    scores: Array.from(result.scores),
    prompts: result.prompts,
    count: result.count,
    lowRes: base64(result.lowRes),
    ms: result.ms,
  };
}

// Timings measured in the page (performance.now), for scripts/bench_web.py: the encoder
// (preprocessing included) `encoderRuns` times on the open image, then `clickRuns` clicks at
// (x, y): the decoder run, and click-to-mask (decoder, then the best mask upsampled to the
// image's size and thresholded, as a click shows it). Each series after one untimed run.
function bench({ encoderRuns = 3, clickRuns = 20, x, y }) {
  return queue(async () => {
    if (!state.embedding) throw new Error("open an image first");
    const { width, height } = state.embedding;
    const encoder = [];
    for (let i = 0; i <= encoderRuns; i++) {
      const t0 = performance.now();
      await state.sam.embed(state.rgba, width, height);
      if (i) encoder.push(performance.now() - t0);
    }
    const decoder = [];
    const click = [];
    for (let i = 0; i <= clickRuns; i++) {
      const t0 = performance.now();
      const result = await state.sam.decode(state.embedding, { pointCoords: [[[x, y]]], pointLabels: [[1]] });
      const t1 = performance.now();
      state.sam.mask(result, argmax(result.scores), width, height);
      if (i) {
        decoder.push(t1 - t0);
        click.push(performance.now() - t0);
      }
    }
    return { encoder, decoder, click };
  });
}

const ready = start();
state.busy = ready.catch(fail); // what is asked before the model is loaded waits for it

window.sam2app = {
  ready,
  addPoint,
  setBox,
  undo,
  clear,
  choose,
  predict,
  predictedMask,
  bench,
  encodeTensor,
  setMultimask: (on) => {
    $("multimask").checked = on;
    return redoLast();
  },
  idle: () => state.busy,
  backend: () => state.sam && state.sam.backend,
  error: () => state.error,
  embedding: () => state.embedding && { width: state.embedding.width, height: state.embedding.height, ms: state.embedding.ms },
  steps: () => state.steps.length,
  input: () => state.embedding && base64(state.embedding.input), // the encoder's input tensor
  // The last click step as plain data: low-res logits (unclamped, C x 256 x 256 float32), the
  // mask_input it was given and the chosen mask's bits (HxW uint8) as base64, the decoder's
  // point feeds in the 1024 frame.
  last: () => {
    const step = last();
    if (!step) return null;
    return {
      ...summary(step.result),
      clicks: step.clicks,
      box: step.box,
      multimask: step.multimask,
      maskInput: step.maskInput ? base64(step.maskInput) : null,
      chosen: step.chosen,
      mask: base64(step.chosenMask.bits),
    };
  },
};

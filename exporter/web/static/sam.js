// The model in the browser: onnxruntime-web sessions for one exported folder, and the same
// steps as SAM2OnnxPredictor (exporter/runtime/predictor.py): embed an image, decode prompts,
// upsample the chosen mask. Sizes, names, normalisation and labels come from the server's
// /config.json, which reads them from the contract (exporter/core/contract.py).

import { preprocess, transformCoords, upsampleLogits } from "./transforms.js";

const now = () => performance.now();

// Which execution provider the encoder gets: "webgpu" when asked for (or "auto") and the browser
// has an adapter that can run the graphs, else multi-threaded wasm. FP16 graphs need the
// adapter's shader-f16 feature: without it onnxruntime-web's WebGPU provider fails to build
// their shaders (measured on Chromium's SwiftShader adapter; docs/release.md). The decoder
// always runs on wasm, as NimbusImage runs it: it is small, and per-click latency there is
// lower than a GPU round trip.
async function chooseProvider(asked, precision) {
  if (asked === "wasm") return { name: "wasm", adapter: null };
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  const info = (adapter && adapter.info) || {};
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unknown";
  if (adapter && (precision !== "fp16" || adapter.features.has("shader-f16"))) return { name: "webgpu", adapter: name };
  const why = adapter
    ? `the WebGPU adapter "${name}" lacks shader-f16, which FP16 graphs need there`
    : "this browser has no WebGPU adapter";
  if (asked === "webgpu") throw new Error(`WebGPU was asked for but ${why}: use wasm${adapter ? " or another precision" : ""}`);
  return { name: "wasm", adapter: null, note: adapter ? `not WebGPU: ${why}` : null };
}

export class Sam2Web {
  // config: /config.json; options: { ep: "auto" | "webgpu" | "wasm", threads: N (0: all cores) }
  static async create(config, options = {}) {
    const ort = await import(config.ort.module);
    ort.env.wasm.wasmPaths = config.ort.wasm_paths;
    // threads need cross-origin isolation (the server's COOP/COEP headers)
    const cores = navigator.hardwareConcurrency || 1;
    ort.env.wasm.numThreads = crossOriginIsolated ? options.threads || cores : 1;
    const provider = await chooseProvider(options.ep || "auto", config.precision);
    const t0 = now();
    const encoder = await ort.InferenceSession.create(config.graphs.encoder, { executionProviders: [provider.name] });
    const decoder = await ort.InferenceSession.create(config.graphs.decoder, { executionProviders: ["wasm"] });
    const sam = new Sam2Web(ort, config, encoder, decoder);
    sam.backend = {
      encoder: provider.name,
      decoder: "wasm",
      adapter: provider.adapter,
      note: provider.note || null, // why the encoder is not on WebGPU when there is an adapter
      threads: ort.env.wasm.numThreads,
      isolated: crossOriginIsolated,
      ort: config.ort.version,
      load_ms: now() - t0,
    };
    return sam;
  }

  constructor(ort, config, encoder, decoder) {
    this.ort = ort;
    this.config = config;
    this.contract = config.contract;
    this.encoder = encoder;
    this.decoder = decoder;
  }

  // RGBA bytes of the original image -> { feeds: the decoder's three feature tensors,
  // input: the encoder's [1, 3, S, S] input, width, height, ms: { preprocess, encoder } }.
  async embed(rgba, width, height) {
    const t0 = now();
    const x = preprocess(rgba, width, height, this.contract);
    const t1 = now();
    const feeds = await this.encodeTensor(x);
    return { feeds, input: x, width, height, ms: { preprocess: t1 - t0, encoder: now() - t1 } };
  }

  // The encoder graph alone on a preprocessed [1, 3, S, S] Float32Array -> its outputs by name,
  // in memory (WebGPU outputs are read back: the decoder runs on wasm).
  async encodeTensor(x) {
    const size = this.contract.image_size;
    const input = this.config.io.encoder.inputs[0].name;
    const out = await this.encoder.run({ [input]: new this.ort.Tensor("float32", x, [1, 3, size, size]) });
    const feeds = {};
    for (const spec of this.config.io.encoder.outputs) {
      const t = out[spec.name];
      feeds[spec.name] = t.location === "cpu" ? t : new this.ort.Tensor("float32", await t.getData(true), t.dims);
    }
    return feeds;
  }

  // The decoder for L prompts, as SAM2OnnxPredictor.decode_logits and prepare_prompts:
  //   pointCoords [L][N][2] x, y in original pixels, pointLabels [L][N] (1 foreground,
  //     0 background, -1 padding of shorter prompts), or null;
  //   boxes [L][4] x0, y0, x1, y1, or null: two corner points labelled 2 and 3, placed before
  //     the clicks of the same prompt;
  //   maskInput: 256 x 256 low-res logits of an earlier call (the same for every prompt), or null.
  // Returns { lowRes: L x C x 256 x 256 unclamped logits, scores: L x C, prompts: L, count: C,
  // coords, labels (the feeds, 1024 frame), ms } with C = 3 (multimask) or 1 (SAM 2's
  // stability-chosen mask).
  async decode(embedding, { pointCoords = null, pointLabels = null, boxes = null, maskInput = null, multimask = true } = {}) {
    const { labels } = this.contract;
    const frame = ([x, y]) => transformCoords(x, y, embedding.width, embedding.height, this.contract);
    const prompts = Math.max(pointCoords ? pointCoords.length : 0, boxes ? boxes.length : 0);
    if (!prompts) throw new Error("empty prompt: click a point or drag a box");
    const coords = [];
    const kinds = [];
    for (let l = 0; l < prompts; l++) {
      if (boxes) {
        const b = boxes[l];
        coords.push(...frame([b[0], b[1]]), ...frame([b[2], b[3]]));
        kinds.push(labels.box_top_left, labels.box_bottom_right);
      }
      if (pointCoords) {
        pointCoords[l].forEach((xy, i) => {
          coords.push(...frame(xy));
          kinds.push(pointLabels[l][i]);
        });
      }
    }
    const n = kinds.length / prompts;
    const side = this.contract.low_res_size;
    const T = this.ort.Tensor;
    const masks = new Float32Array(prompts * side * side);
    if (maskInput) for (let l = 0; l < prompts; l++) masks.set(maskInput, l * side * side);
    const feeds = {
      ...embedding.feeds,
      point_coords: new T("float32", Float32Array.from(coords), [prompts, n, 2]),
      point_labels: new T("float32", Float32Array.from(kinds), [prompts, n]),
      mask_input: new T("float32", masks, [prompts, 1, side, side]),
      has_mask_input: new T("float32", new Float32Array(prompts).fill(maskInput ? 1 : 0), [prompts]),
    };
    const t0 = now();
    const out = await this.decoder.run(feeds);
    const ms = now() - t0;
    const [logits, scores] = multimask ? ["masks", "iou_predictions"] : ["single_masks", "single_iou_predictions"];
    return {
      lowRes: out[logits].data,
      scores: out[scores].data,
      prompts,
      count: out[scores].dims[1],
      coords,
      labels: kinds,
      ms,
    };
  }

  // Mask `index` (prompt * C + candidate) of a decode result at the original size: its
  // upsampled logits (Float32Array HxW), its bits (Uint8Array HxW, 1 above the threshold), and
  // its low-res logits clamped as the official predictor returns them: what the next click
  // feeds back as mask_input.
  mask(result, index, width, height) {
    const side = this.contract.low_res_size;
    const start = index * side * side;
    const clamp = this.contract.low_res_clamp;
    const threshold = this.contract.mask_threshold;
    const logits = upsampleLogits(result.lowRes, start, side, width, height);
    const bits = new Uint8Array(logits.length);
    for (let i = 0; i < logits.length; i++) bits[i] = logits[i] > threshold ? 1 : 0;
    const lowRes = result.lowRes.slice(start, start + side * side).map((v) => Math.min(Math.max(v, -clamp), clamp));
    return { logits, bits, lowRes };
  }
}

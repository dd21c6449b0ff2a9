// NimbusImage's SAM 2 client flow (arjunrajlaboratory/NimbusImage, src/pipelines/samPipeline.ts),
// step for step, against a folder served by `sam2-onnx serve`: evaluated in the page by
// tests/test_release.py. What it does, as that client does it:
//   - encoder.ort on the execution provider the test gives (the client asks for WebGPU),
//     decoder.onnx with the default options;
//   - the image drawn into a 1024 x 1024 canvas (alpha: false, sRGB), longest side scaled to
//     1024 (Math.round of the other), the rest left black by clearRect; per channel
//     (value - mean) / std on 0..255 into a Float32Array, tensor "image" [1, 3, 1024, 1024];
//   - point_coords [1, N, 2] in that scaled frame, point_labels [1, N] (1 / 0 clicks, 2 / 3 box
//     corners), one (0, 0) point labelled -1 when there is no box;
//   - mask_input zeros [1, 1, 256, 256], has_mask_input new Tensor("float32", [0]);
//   - the decoder fed the encoder's outputs as they come, plus the prompt tensors;
//   - masks and iou_predictions read, with masks.dims.
// Returns every tensor it fed and read, as base64, for the test to run the same tensors
// through the Python onnxruntime. (One function expression, no trailing semicolon: Playwright
// evaluates it in parentheses.)
async ({ png, prompts, ep }) => {
  const ort = await import("/ort/ort.webgpu.min.mjs");
  ort.env.wasm.wasmPaths = "/ort/";
  const maxWidth = 1024;
  const maxHeight = 1024;
  const meanPerChannel = [123.675, 116.28, 103.53];
  const stdPerChannel = [58.395, 57.12, 57.375];
  const b64 = (typed) => {
    const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };

  const encoder = await ort.InferenceSession.create("/model/encoder.ort", { executionProviders: [ep] });
  const decoder = await ort.InferenceSession.create("/model/decoder.onnx", {});

  // the source canvas (NimbusImage screenshots its map into one)
  const bitmap = await createImageBitmap(new Blob([Uint8Array.from(atob(png), (c) => c.charCodeAt(0))], { type: "image/png" }));
  const srcCanvas = document.createElement("canvas");
  srcCanvas.width = bitmap.width;
  srcCanvas.height = bitmap.height;
  srcCanvas.getContext("2d").drawImage(bitmap, 0, 0);

  // processCanvas
  const canvas = document.createElement("canvas");
  canvas.width = maxWidth;
  canvas.height = maxHeight;
  const context = canvas.getContext("2d", { alpha: false, colorSpace: "srgb", willReadFrequently: true });
  const srcWidth = srcCanvas.width;
  const srcHeight = srcCanvas.height;
  let scaledWidth;
  let scaledHeight;
  if (srcWidth * maxHeight > srcHeight * maxWidth) {
    scaledWidth = maxWidth;
    scaledHeight = Math.round(srcHeight * (maxWidth / srcWidth));
  } else {
    scaledWidth = Math.round(srcWidth * (maxHeight / srcHeight));
    scaledHeight = maxHeight;
  }
  context.clearRect(0, 0, maxWidth, maxHeight);
  context.drawImage(srcCanvas, 0, 0, scaledWidth, scaledHeight);
  const rgba = context.getImageData(0, 0, maxWidth, maxHeight).data;
  const nPixels = maxWidth * maxHeight;
  const buffer = new Float32Array(nPixels * 3);
  for (let channel = 0; channel < 3; ++channel) {
    for (let i = 0; i < nPixels; ++i) {
      buffer[channel * nPixels + i] = (rgba[i * 4 + channel] - meanPerChannel[channel]) / stdPerChannel[channel];
    }
  }
  const encoderOutput = await encoder.run({ image: new ort.Tensor("float32", buffer, [1, 3, maxHeight, maxWidth]) });

  const results = [];
  for (const prompt of prompts) {
    // processPrompt: clicks and box corners scaled into the encoder frame, a padding point without a box
    const points = [];
    const labels = [];
    const push = (x, y, label, scale) => {
      points.push(scale ? x * (scaledWidth / srcWidth) : x, scale ? y * (scaledHeight / srcHeight) : y);
      labels.push(label);
    };
    for (const [x, y, label] of prompt.clicks || []) push(x, y, label, true);
    if (prompt.box) {
      push(prompt.box[0], prompt.box[1], 2, true);
      push(prompt.box[2], prompt.box[3], 3, true);
    } else {
      push(0, 0, -1, false);
    }
    const n = labels.length;
    const feeds = {
      point_coords: new ort.Tensor("float32", Float32Array.from(points), [1, n, 2]),
      point_labels: new ort.Tensor("float32", Float32Array.from(labels), [1, n]),
      has_mask_input: new ort.Tensor("float32", [0]),
      mask_input: new ort.Tensor("float32", new Float32Array(256 * 256), [1, 1, 256, 256]),
    };
    const out = await decoder.run({ ...encoderOutput, ...feeds });
    results.push({
      point_coords: Array.from(feeds.point_coords.data),
      point_labels: Array.from(feeds.point_labels.data),
      masks: b64(out.masks.data),
      masks_dims: out.masks.dims,
      iou_predictions: Array.from(out.iou_predictions.data),
    });
  }
  return { image: b64(buffer), scaled: [scaledWidth, scaledHeight], results };
}

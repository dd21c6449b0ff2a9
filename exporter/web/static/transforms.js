// SAM2Transforms in the browser: the same formulas as exporter/runtime/transforms.py, step for
// step, so that the page's tensors equal the Python runtime's to the last float32 bit.
//
// numpy rounds every float32 operation to float32; JavaScript computes in float64. Math.fround
// after each float32 operation gives the same results: for +, -, *, / of float32 operands the
// float64 result rounded once to float32 is the correctly rounded float32 result. Where numpy
// computes in float64 (tap positions and weights), so does this file.

const f32 = Math.fround;

// numpy's pairwise summation of float64 values (np.sum along a contiguous axis): a plain loop
// below 8 values, eight running sums up to 128, halves above. The weights' normalising sums
// must be added in numpy's order, or a weight can differ by one float32 step.
function pairwiseSum(a, start, n) {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    const r = [];
    for (let j = 0; j < 8; j++) r.push(a[start + j]);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    let res = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

// Antialiased bilinear taps, as torch's _compute_weights_aa (see transforms.py _aa_taps):
// per output index K source indices and float32 weights (zero-weight padding).
function aaTaps(inSize, outSize) {
  const scale = inSize / outSize;
  const support = scale >= 1 ? scale : 1;
  const invscale = scale >= 1 ? 1 / scale : 1;
  const lo = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  let k = 0;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    lo[i] = Math.max(Math.trunc(center - support + 0.5), 0);
    count[i] = Math.min(Math.trunc(center + support + 0.5), inSize) - lo[i];
    k = Math.max(k, count[i]);
  }
  const idx = new Int32Array(outSize * k);
  const weights = new Float32Array(outSize * k);
  const raw = new Float64Array(k);
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    for (let j = 0; j < k; j++) {
      const w = 1 - Math.abs((lo[i] + j - center + 0.5) * invscale);
      raw[j] = j < count[i] ? Math.max(w, 0) : 0;
    }
    const sum = pairwiseSum(raw, 0, k);
    for (let j = 0; j < k; j++) {
      weights[i * k + j] = raw[j] / sum;
      idx[i * k + j] = Math.min(lo[i] + j, inSize - 1);
    }
  }
  return { idx, weights, k };
}

// RGBA bytes (HxW, as canvas getImageData gives them) -> Float32Array [3, S, S] (S = the
// contract's image size): /255, antialiased resize to SxS (width first, then height, float32
// between), (x - mean) / std. The batch axis of [1, 3, S, S] is the caller's.
export function preprocess(rgba, width, height, contract) {
  const size = contract.image_size;
  const tw = aaTaps(width, size);
  const th = aaTaps(height, size);
  const out = new Float32Array(3 * size * size);
  const row = new Float32Array(width);
  const wide = new Float32Array(height * size); // one channel after the width pass
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) row[x] = f32(rgba[4 * (y * width + x) + c] / 255);
      for (let o = 0; o < size; o++) {
        let acc = 0;
        for (let j = 0; j < tw.k; j++) acc = f32(acc + f32(row[tw.idx[o * tw.k + j]] * tw.weights[o * tw.k + j]));
        wide[y * size + o] = acc;
      }
    }
    const mean = f32(contract.pixel_mean[c]);
    const std = f32(contract.pixel_std[c]);
    const plane = c * size * size;
    for (let o = 0; o < size; o++) {
      for (let x = 0; x < size; x++) {
        let acc = 0;
        for (let j = 0; j < th.k; j++) acc = f32(acc + f32(wide[th.idx[o * th.k + j] * size + x] * th.weights[o * th.k + j]));
        out[plane + o * size + x] = f32(f32(acc - mean) / std);
      }
    }
  }
  return out;
}

// Pixel x, y of the original image -> the encoder's input frame (transform_coords): the
// coordinates are float32 first, as np.array(coords, dtype=float32) makes them.
export function transformCoords(x, y, width, height, contract) {
  const size = f32(contract.image_size);
  return [f32(f32(f32(x) / f32(width)) * size), f32(f32(f32(y) / f32(height)) * size)];
}

// i0, i1, lambda0, lambda1 per output index, as torch's CPU upsample_bilinear2d
// (transforms.py _linear_taps).
function linearTaps(inSize, outSize) {
  const scale = f32(inSize / outSize);
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l0 = new Float32Array(outSize);
  const l1 = new Float32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = Math.max(f32(scale * (i + 0.5) - 0.5), 0);
    i0[i] = Math.min(Math.trunc(src), inSize - 1);
    i1[i] = Math.min(i0[i] + 1, inSize - 1);
    l1[i] = Math.min(Math.max(f32(src - i0[i]), 0), 1);
    l0[i] = f32(1 - l1[i]);
  }
  return { i0, i1, l0, l1 };
}

// One [n, n] low-res logit plane (Float32Array, offset `start`) -> Float32Array [height, width]
// of bilinearly upsampled logits (upsample_masks: width first, then height).
export function upsampleLogits(logits, start, n, width, height) {
  const c = linearTaps(n, width);
  const r = linearTaps(n, height);
  const rows = new Float32Array(n * width);
  for (let y = 0; y < n; y++) {
    const base = start + y * n;
    for (let x = 0; x < width; x++) {
      rows[y * width + x] = f32(f32(logits[base + c.i0[x]] * c.l0[x]) + f32(logits[base + c.i1[x]] * c.l1[x]));
    }
  }
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const a = r.i0[y] * width;
    const b = r.i1[y] * width;
    for (let x = 0; x < width; x++) out[y * width + x] = f32(f32(rows[a + x] * r.l0[y]) + f32(rows[b + x] * r.l1[y]));
  }
  return out;
}

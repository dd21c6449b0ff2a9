// One graph file in onnxruntime-web, as a consumer's page would use it: create a session on
// the execution provider asked for, run it on feeds given as base64 bytes, and return every
// output. Nothing of the click-to-segment page is involved (exporter/web/graph_check.py drives
// this from a blank page to prove which release files a browser can run).

const DTYPES = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array };

function bytes(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function b64(typed) {
  const view = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let s = "";
  for (let i = 0; i < view.length; i += 0x8000) s += String.fromCharCode(...view.subarray(i, i + 0x8000));
  return btoa(s);
}

// url: the graph (/model/<file>); ep: "wasm" or "webgpu"; runs: [{name: {dtype, dims, data}}].
// Returns { ok: true, adapter, outputs: [{name: {dtype, dims, data}}] } or { ok: false, stage,
// adapter, error } where stage says what failed: "adapter", "load" or "run" (adapter: the WebGPU
// adapter's description and whether it has the shader-f16 feature, null on wasm).
export async function runGraph({ url, ep, runs, threads }) {
  const ort = await import("/ort/ort.webgpu.min.mjs");
  ort.env.wasm.wasmPaths = "/ort/";
  ort.env.wasm.numThreads = crossOriginIsolated ? threads || navigator.hardwareConcurrency || 1 : 1;
  let adapter = null;
  if (ep === "webgpu") {
    const found = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
    if (!found) return { ok: false, stage: "adapter", error: "this browser has no WebGPU adapter" };
    const info = found.info || {};
    adapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unknown";
    // FP16 graphs need it: without it onnxruntime-web's WebGPU shaders cannot take f16
    adapter += found.features.has("shader-f16") ? " (shader-f16)" : " (no shader-f16)";
  }
  let session;
  try {
    session = await ort.InferenceSession.create(url, { executionProviders: [ep] });
  } catch (e) {
    return { ok: false, stage: "load", adapter, error: String(e && e.message ? e.message : e) };
  }
  const outputs = [];
  try {
    for (const feeds of runs) {
      const tensors = {};
      for (const [name, t] of Object.entries(feeds)) {
        tensors[name] = new ort.Tensor(t.dtype, new DTYPES[t.dtype](bytes(t.data).buffer), t.dims);
      }
      const out = await session.run(tensors);
      const read = {};
      for (const name of session.outputNames) {
        const t = out[name];
        const data = t.location === "cpu" ? t.data : await t.getData(true);
        read[name] = { dtype: t.type, dims: t.dims, data: b64(data) };
      }
      outputs.push(read);
    }
  } catch (e) {
    return { ok: false, stage: "run", adapter, error: String(e && e.message ? e.message : e) };
  } finally {
    await session.release();
  }
  return { ok: true, adapter, threads: ort.env.wasm.numThreads, outputs };
}

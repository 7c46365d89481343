// Face verification in the page: YuNet (onnxruntime-web) finds the face and its five landmarks, the
// similarity warp aligns it (face.js), the default zoo model embeds it (LiteRT.js on its TFLite file,
// or onnxruntime-web on its ONNX file), and the cosine at the card's threshold gives the verdict.
// Everything is fetched from this page's own origin (scripts/serve_web.py).
//
// URL parameters: runtime=litert|onnx (default: the config's, the faster one measured here),
// threads=N (WASM threads; needs the cross-origin isolation headers serve_web.py sends; default 1),
// litert_wasm=FILE (a LiteRT.js WASM build by name, e.g. litert_wasm_compat_internal.js: no relaxed SIMD).
import * as ort from 'onnxruntime-web';
import {loadLiteRt, loadAndCompile, Tensor} from '@litertjs/core';
import {alignFace, cosine, decodeYunet, fromArcfaceCrop, l2normalize, prepare, resizeArea, rgbaToRgb, rgbToRgba,
  yunetInput} from './face.js';

const params = new URLSearchParams(location.search);
// keras_arcface.alignment.detector.MAX_DETECTION_SIDE: longer sides above it are shrunk (area) for detection.
const MAX_DETECTION_SIDE = 800;

async function loadConfig() {
  const response = await fetch('models/config.json');
  if (!response.ok) throw new Error(`models/config.json: HTTP ${response.status} (run scripts/serve_web.py)`);
  return response.json();
}

async function onnxSession(url, threads) {
  ort.env.wasm.wasmPaths = new URL('node_modules/onnxruntime-web/dist/', location.href).href;
  ort.env.wasm.numThreads = threads;
  return ort.InferenceSession.create(url, {executionProviders: ['wasm'], graphOptimizationLevel: 'all'});
}

// One embedder interface over both runtimes: embed(prepared Float32Array, [1, h, w, 3]) -> Float32Array.
async function onnxEmbedder(file, threads) {
  const session = await onnxSession(file.url, threads);
  return {
    runtime: 'onnxruntime-web', spec: file.spec, threshold: file.threshold, format: file.format,
    async embed(data, dims) {
      const output = await session.run({[session.inputNames[0]]: new ort.Tensor('float32', data, dims)});
      return output[session.outputNames[0]].data;
    },
  };
}

async function litertEmbedder(file, threads) {
  const wasm = params.get('litert_wasm');
  const root = new URL('node_modules/@litertjs/core/wasm/', location.href).href;
  await loadLiteRt(wasm ? root + wasm : root, {threads: threads > 1});
  const model = await loadAndCompile(file.url, {accelerator: 'wasm', cpuOptions: {numThreads: threads}});
  return {
    runtime: 'LiteRT.js', spec: file.spec, threshold: file.threshold, format: file.format,
    async embed(data, dims) {
      const input = new Tensor(data, dims);
      const outputs = await model.run(input);
      const result = outputs[0].toTypedArray().slice();
      input.delete();
      outputs.forEach((t) => t.delete());
      return result;
    },
  };
}

async function imageOf(url) {
  const image = new Image();
  image.src = url;
  await image.decode();
  const canvas = new OffscreenCanvas(image.naturalWidth, image.naturalHeight);
  const context = canvas.getContext('2d', {colorSpace: 'srgb'});
  context.drawImage(image, 0, 0);
  const {data, width, height} = context.getImageData(0, 0, canvas.width, canvas.height);
  return {rgba: data, width, height};
}

function largest(faces) {
  if (!faces.length) throw new Error('no face found');
  return faces.reduce((best, f) => (f.box[2] * f.box[3] > best.box[2] * best.box[3] ? f : best));
}

class FaceVerifier {
  constructor(config, detector, embedder) {
    this.config = config;
    this.detector = detector;
    this.embedder = embedder;
  }

  static async create(config, runtime, threads) {
    const detector = await onnxSession(config.detector, threads);
    const embedder = runtime === 'onnx'
      ? await onnxEmbedder(config.files.onnx, threads) : await litertEmbedder(config.files.tflite, threads);
    return new FaceVerifier(config, detector, embedder);
  }

  async detect(photo) {  // every face YuNet finds; a photo with a longer side over 800 is shrunk for it
    const factor = Math.min(1, MAX_DETECTION_SIDE / Math.max(photo.width, photo.height));
    let {rgba, width, height} = photo;
    if (factor < 1) {
      const [w, h] = [Math.round(width * factor), Math.round(height * factor)];
      rgba = rgbToRgba(resizeArea(rgbaToRgb(rgba, width * height), width, height, w, h), w * h);
      [width, height] = [w, h];
    }
    const {data, padW, padH} = yunetInput(rgba, width, height);
    const outputs = await this.detector.run({input: new ort.Tensor('float32', data, [1, 3, padH, padW])});
    const arrays = Object.fromEntries(Object.entries(outputs).map(([name, tensor]) => [name, tensor.data]));
    return decodeYunet(arrays, padW, padH, 0.5, 0.3).filter((face) => face.score >= 0.5).map((face) => ({
      ...face, box: face.box.map((v) => v / factor), landmarks: face.landmarks.map(([x, y]) => [x / factor, y / factor]),
    }));
  }

  async alignedCrop(photo) {  // the largest face, aligned onto the model's template
    const face = largest(await this.detect(photo));
    return {face, crop: alignFace(photo.rgba, photo.width, photo.height, face.landmarks, this.embedder.spec)};
  }

  async embedCrop(crop) {
    const [h, w] = this.embedder.spec.size;
    return l2normalize(await this.embedder.embed(prepare(crop, this.embedder.spec), [1, h, w, 3]));
  }

  async verify(urlA, urlB) {
    const sides = [];
    for (const url of [urlA, urlB]) {
      const {face, crop} = await this.alignedCrop(await imageOf(url));
      sides.push({face, crop, embedding: await this.embedCrop(crop)});
    }
    const similarity = cosine(sides[0].embedding, sides[1].embedding);
    return {similarity, same: similarity >= this.embedder.threshold, threshold: this.embedder.threshold, sides};
  }
}

function show(canvas, crop, [h, w]) {
  canvas.width = w;
  canvas.height = h;
  canvas.getContext('2d').putImageData(new ImageData(rgbToRgba(crop, w * h), w, h), 0, 0);
}

async function main() {
  const status = document.getElementById('status');
  const config = await loadConfig();
  const runtime = params.get('runtime') || config.runtime;
  const threads = Number(params.get('threads') || 1);
  const verifier = await FaceVerifier.create(config, runtime, threads);
  status.textContent = `${config.model} (${verifier.embedder.format}) on ${verifier.embedder.runtime}, ` +
    `${threads} thread(s); threshold ${verifier.embedder.threshold.toFixed(4)}`;
  const run = async (urlA, urlB) => {
    const result = await verifier.verify(urlA, urlB);
    show(document.getElementById('crop-a'), result.sides[0].crop, verifier.embedder.spec.size);
    show(document.getElementById('crop-b'), result.sides[1].crop, verifier.embedder.spec.size);
    document.getElementById('similarity').textContent = result.similarity.toFixed(4);
    const verdict = document.getElementById('verdict');
    verdict.textContent = result.same ? 'same person' : 'different people';
    verdict.className = result.same ? 'same' : 'different';
    return result;
  };
  document.getElementById('compare').addEventListener('click', async () => {
    const [a, b] = ['photo-a', 'photo-b'].map((id) => document.getElementById(id).files[0]);
    if (!a || !b) return;
    try {
      await run(URL.createObjectURL(a), URL.createObjectURL(b));
    } catch (error) {
      document.getElementById('verdict').textContent = String(error);
    }
  });
  // An aligned crop: as it is when it has the model's size, else an ArcFace 112x112 crop mapped onto the
  // model's template (the rule of InputSpec.aligned_crop).
  const embedAlignedCrop = async (url) => {
    const photo = await imageOf(url);
    const rgb = rgbaToRgb(photo.rgba, photo.width * photo.height);
    const [h, w] = verifier.embedder.spec.size;
    if (photo.width === w && photo.height === h) return verifier.embedCrop(rgb);
    if (photo.width !== 112 || photo.height !== 112) throw new Error(`not an aligned crop: ${photo.width}x${photo.height}`);
    return verifier.embedCrop(fromArcfaceCrop(rgb, verifier.embedder.spec));
  };
  // For tests and benchmarks (tests/test_web.py, scripts/web_speed.py).
  window.kerasArcface = {
    config, runtime: verifier.embedder.runtime, threads, verify: run,
    async alignedCrop(url) {
      const {face, crop} = await verifier.alignedCrop(await imageOf(url));
      return {landmarks: face.landmarks, score: face.score, crop: Array.from(crop)};
    },
    embedAlignedCrop,
    async compareAlignedCrops(urlA, urlB) {  // two aligned crops: similarity, verdict
      const similarity = cosine(await embedAlignedCrop(urlA), await embedAlignedCrop(urlB));
      return {similarity, same: similarity >= verifier.embedder.threshold};
    },
    async timePerFace(url, repeats) {  // detect, align, embed: milliseconds of each, per run, after a warm-up
      const photo = await imageOf(url);
      const once = async () => {
        const t0 = performance.now();
        const faces = await verifier.detect(photo);
        const t1 = performance.now();
        const crop = alignFace(photo.rgba, photo.width, photo.height, largest(faces).landmarks, verifier.embedder.spec);
        const t2 = performance.now();
        await verifier.embedCrop(crop);
        const t3 = performance.now();
        return {detect: t1 - t0, align: t2 - t1, embed: t3 - t2, total: t3 - t0};
      };
      await once();
      const runs = [];
      for (let i = 0; i < repeats; i++) runs.push(await once());
      return runs;
    },
  };
  document.body.dataset.ready = 'true';
}

main().catch((error) => {
  document.getElementById('status').textContent = `failed: ${error}`;
  document.body.dataset.ready = 'error';
  console.error(error);
});

// Face detection decoding, alignment and preprocessing: the browser's copy of the rules keras-arcface's
// Python applies (keras_arcface/alignment, keras_arcface/runtime), checked against them by
// tests/test_web.py in headless Chromium.

// YuNet (OpenCV Zoo face_detection_yunet_2023mar): the input is the photo, BGR, 0-255, NCHW, padded with
// zeros on the right and bottom to multiples of 32 (as OpenCV's FaceDetectorYN feeds it).
export function yunetInput(rgba, width, height) {
  const padW = Math.floor((width - 1) / 32 + 1) * 32;
  const padH = Math.floor((height - 1) / 32 + 1) * 32;
  const plane = padW * padH;
  const data = new Float32Array(3 * plane);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const src = 4 * (y * width + x);
      const dst = y * padW + x;
      data[dst] = rgba[src + 2];  // B
      data[plane + dst] = rgba[src + 1];  // G
      data[2 * plane + dst] = rgba[src];  // R
    }
  }
  return {data, padW, padH};
}

// YuNet's outputs (cls_S, obj_S, bbox_S, kps_S for strides 8, 16, 32) as faces, as OpenCV decodes them:
// score sqrt(cls * obj), box centre (col + dx, row + dy) * stride, size exp(dw, dh) * stride, landmarks
// (col + kx, row + ky) * stride; then non-maximum suppression on integer boxes.
export function decodeYunet(outputs, padW, padH, scoreThreshold = 0.5, nmsThreshold = 0.3) {
  const faces = [];
  for (const stride of [8, 16, 32]) {
    const cols = Math.floor(padW / stride);
    const rows = Math.floor(padH / stride);
    const cls = outputs[`cls_${stride}`], obj = outputs[`obj_${stride}`];
    const bbox = outputs[`bbox_${stride}`], kps = outputs[`kps_${stride}`];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = r * cols + c;
        const clsScore = Math.min(Math.max(cls[i], 0), 1);
        const objScore = Math.min(Math.max(obj[i], 0), 1);
        const score = Math.sqrt(clsScore * objScore);
        if (score < scoreThreshold) continue;
        const cx = (c + bbox[4 * i]) * stride, cy = (r + bbox[4 * i + 1]) * stride;
        const w = Math.exp(bbox[4 * i + 2]) * stride, h = Math.exp(bbox[4 * i + 3]) * stride;
        const landmarks = [];
        for (let n = 0; n < 5; n++) {
          landmarks.push([(kps[10 * i + 2 * n] + c) * stride, (kps[10 * i + 2 * n + 1] + r) * stride]);
        }
        faces.push({box: [cx - w / 2, cy - h / 2, w, h], landmarks, score});
      }
    }
  }
  return nonMaximumSuppression(faces, nmsThreshold);
}

function nonMaximumSuppression(faces, threshold) {
  const order = faces.map((_, i) => i).sort((a, b) => faces[b].score - faces[a].score);
  const rect = (f) => f.box.map((v) => Math.trunc(v));
  const kept = [];
  for (const i of order) {
    const [x1, y1, w1, h1] = rect(faces[i]);
    const overlaps = kept.some((j) => {
      const [x2, y2, w2, h2] = rect(faces[j]);
      const iw = Math.max(0, Math.min(x1 + w1, x2 + w2) - Math.max(x1, x2));
      const ih = Math.max(0, Math.min(y1 + h1, y2 + h2) - Math.max(y1, y2));
      const inter = iw * ih;
      return inter / (w1 * h1 + w2 * h2 - inter) > threshold;
    });
    if (!overlaps) kept.push(i);
  }
  return kept.map((i) => faces[i]);
}

// The ArcFace template (112x112), and a spec's: its own five points, else ArcFace's scaled to its crop.
export const ARCFACE_LANDMARKS = [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
  [41.5493, 92.3655], [70.7299, 92.2041]];
export function templateOf(spec) {
  if (spec.template) return spec.template;
  const [h, w] = spec.size;
  return ARCFACE_LANDMARKS.map(([x, y]) => [x * w / 112, y * h / 112]);
}

// The 2x3 similarity [[a, -b, tx], [b, a, ty]] minimising the squared distances from the mapped points
// to the targets (keras_arcface.runtime.crops.least_squares_similarity): normal equations of 4 unknowns.
export function leastSquaresSimilarity(points, targets) {
  const ata = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]];
  const atb = [0, 0, 0, 0];
  const add = (row, value) => {
    for (let i = 0; i < 4; i++) {
      atb[i] += row[i] * value;
      for (let j = 0; j < 4; j++) ata[i][j] += row[i] * row[j];
    }
  };
  points.forEach(([x, y], k) => {
    add([x, -y, 1, 0], targets[k][0]);
    add([y, x, 0, 1], targets[k][1]);
  });
  const [a, b, tx, ty] = solve(ata, atb);
  return [[a, -b, tx], [b, a, ty]];
}

function solve(matrix, vector) {  // Gaussian elimination with partial pivoting
  const n = vector.length;
  const m = matrix.map((row, i) => [...row, vector[i]]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r][col] / m[col][col];
      for (let c = col; c <= n; c++) m[r][c] -= f * m[col][c];
    }
  }
  return m.map((row, i) => row[n] / row[i]);
}

// An RGB crop (Uint8ClampedArray, width * height * 3) of an RGBA image warped by the 2x3 matrix (source
// pixel -> crop pixel), bilinear, black outside the image: cv2.warpAffine(INTER_LINEAR, BORDER_CONSTANT 0).
export function warpAffine(rgba, width, height, matrix, outWidth, outHeight) {
  const [[a, b, c], [d, e, f]] = matrix;
  const det = a * e - b * d;
  const ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
  const ic = -(ia * c + ib * f), ifx = -(id * c + ie * f);
  const out = new Uint8ClampedArray(outWidth * outHeight * 3);
  const pixel = (x, y, ch) => (x < 0 || y < 0 || x >= width || y >= height) ? 0 : rgba[4 * (y * width + x) + ch];
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      // OpenCV quantises source coordinates to 1/32 pixel (INTER_TAB_SIZE)
      const sx = Math.round((ia * x + ib * y + ic) * 32) / 32;
      const sy = Math.round((id * x + ie * y + ifx) * 32) / 32;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      for (let ch = 0; ch < 3; ch++) {
        const top = pixel(x0, y0, ch) * (1 - fx) + pixel(x0 + 1, y0, ch) * fx;
        const bottom = pixel(x0, y0 + 1, ch) * (1 - fx) + pixel(x0 + 1, y0 + 1, ch) * fx;
        out[3 * (y * outWidth + x) + ch] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return out;
}

// An RGB image (Uint8ClampedArray, w * h * 3) shrunk to (outWidth, outHeight) by area averaging (each
// output pixel the mean of the source area it covers, partial pixels weighted): cv2.INTER_AREA's rule.
export function resizeArea(rgb, width, height, outWidth, outHeight) {
  const sx = width / outWidth, sy = height / outHeight;
  const out = new Uint8ClampedArray(outWidth * outHeight * 3);
  for (let oy = 0; oy < outHeight; oy++) {
    const y0 = oy * sy, y1 = y0 + sy;
    for (let ox = 0; ox < outWidth; ox++) {
      const x0 = ox * sx, x1 = x0 + sx;
      const sum = [0, 0, 0];
      let area = 0;
      for (let y = Math.floor(y0); y < Math.min(Math.ceil(y1), height); y++) {
        const wy = Math.min(y + 1, y1) - Math.max(y, y0);
        for (let x = Math.floor(x0); x < Math.min(Math.ceil(x1), width); x++) {
          const w = wy * (Math.min(x + 1, x1) - Math.max(x, x0));
          const i = 3 * (y * width + x);
          sum[0] += w * rgb[i]; sum[1] += w * rgb[i + 1]; sum[2] += w * rgb[i + 2];
          area += w;
        }
      }
      for (let ch = 0; ch < 3; ch++) out[3 * (oy * outWidth + ox) + ch] = Math.round(sum[ch] / area);
    }
  }
  return out;
}

export function rgbaToRgb(rgba, pixels) {
  const rgb = new Uint8ClampedArray(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    rgb[3 * i] = rgba[4 * i]; rgb[3 * i + 1] = rgba[4 * i + 1]; rgb[3 * i + 2] = rgba[4 * i + 2];
  }
  return rgb;
}

export function rgbToRgba(rgb, pixels) {
  const rgba = new Uint8ClampedArray(pixels * 4);
  for (let i = 0; i < pixels; i++) {
    rgba[4 * i] = rgb[3 * i]; rgba[4 * i + 1] = rgb[3 * i + 1]; rgba[4 * i + 2] = rgb[3 * i + 2];
    rgba[4 * i + 3] = 255;
  }
  return rgba;
}

// The aligned crop of a face in a photo (keras_arcface.alignment.warp.warp_face): the similarity of its
// landmarks onto the spec's template; a face shrunk by more than 2x is first shrunk by area averaging.
export function alignFace(rgba, width, height, landmarks, spec) {
  const [outH, outW] = spec.size;
  let matrix = leastSquaresSimilarity(landmarks, templateOf(spec));
  const scale = Math.sqrt(Math.abs(matrix[0][0] * matrix[1][1] - matrix[0][1] * matrix[1][0]));
  if (scale < 0.5) {
    const smallW = Math.max(1, Math.round(width * scale)), smallH = Math.max(1, Math.round(height * scale));
    const small = resizeArea(rgbaToRgb(rgba, width * height), width, height, smallW, smallH);
    const kx = width / smallW, ky = height / smallH;  // matrix composed with the inverse of the shrink
    matrix = [[matrix[0][0] * kx, matrix[0][1] * ky, matrix[0][2]], [matrix[1][0] * kx, matrix[1][1] * ky, matrix[1][2]]];
    return warpAffine(rgbToRgba(small, smallW * smallH), smallW, smallH, matrix, outW, outH);
  }
  return warpAffine(rgba, width, height, matrix, outW, outH);
}

// An ArcFace 112x112 crop as the spec's crop (keras_arcface.runtime.crops.recrop).
export function fromArcfaceCrop(rgb112, spec) {
  const target = templateOf(spec);
  const [h, w] = spec.size;
  if (h === 112 && w === 112 && !spec.template) return rgb112;
  const matrix = leastSquaresSimilarity(ARCFACE_LANDMARKS, target);
  return warpAffine(rgbToRgba(rgb112, 112 * 112), 112, 112, matrix, w, h);
}

// An RGB crop as the model's input: its colour order, (x - mean) / std, NHWC float32.
export function prepare(rgb, spec) {
  const out = new Float32Array(rgb.length);
  const bgr = spec.colour === 'BGR';
  for (let i = 0; i < rgb.length; i += 3) {
    for (let ch = 0; ch < 3; ch++) {
      out[i + ch] = (rgb[i + (bgr ? 2 - ch : ch)] - spec.mean) / spec.std;
    }
  }
  return out;
}

export function l2normalize(vector) {
  const norm = Math.sqrt(vector.reduce((s, v) => s + v * v, 0));
  return Array.from(vector, (v) => v / norm);
}

export function cosine(a, b) {
  return a.reduce((s, v, i) => s + v * b[i], 0);
}

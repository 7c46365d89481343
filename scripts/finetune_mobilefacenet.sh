#!/usr/bin/env bash
# Fine-tune a ported MobileFaceNet (the zoo's mobilefacenet-192, or MODEL=mobilefacenet-512) on the
# lfw-disjoint data minus the CelebA hold-out, and evaluate each run on LFW (10-fold), lfw-dev and the
# CelebA hold-out (docs/zoo_training.md, issue 17).
#
#   python scripts/make_holdout_benchmark.py        # once: benchmarks/celeba-holdout/images
#   bash scripts/finetune_mobilefacenet.sh OUT RUN [RUN ...] # RUN: both | distill | arcface
#   bash scripts/finetune_mobilefacenet.sh OUT eval MODEL    # only the three evaluations of MODEL
#
# Every run: init from the zoo's MODEL (trained on its own input normalisation), ArcFace centres
# imprinted, light augmentation and flips, batch 128, SGD momentum 0.9, weight decay 5e-4, warm-up then cosine decay to 0. LR,
# EPOCHS, FREEZE_BN=1 (BatchNorm frozen) and HEAD_ONLY=N (the first N epochs train only the head
# and the distillation projection) can be set in the environment (defaults: the lr-find pick, 4
# epochs, BatchNorm trained, no head-only epochs).
set -euo pipefail
OUT=${1:?output folder}; shift
SHARED=${SHARED:-../shared}
LR=${LR:-0.0046}
EPOCHS=${EPOCHS:-4}
DATA=(--data "$SHARED/data/celeba/aligned" "$SHARED/data/yaleb/aligned"
      --exclude "$SHARED/data/celeba/lfw_overlap_candidates.csv" benchmarks/celeba-holdout/identities.txt)
MODEL=${MODEL:-mobilefacenet-192}
case $MODEL in  # the zoo entries' architectures
  mobilefacenet-192) NET=(--backbone mobilefacenet --backbone-params '{"padding": "same", "separable_pointwise": true}'
                          --embedding-size 192) ;;
  mobilefacenet-512) NET=(--backbone mobilefacenet --embedding-size 512) ;;
  *) echo "MODEL must be mobilefacenet-192 or mobilefacenet-512, got $MODEL" >&2; exit 2 ;;
esac
NET+=(--init-from "$MODEL" --init-head imprint)
SCHEDULE=(--head arcface --head-params '{"margin": 0.3, "scale": 32.0}' --batch-size 128 --lr "$LR"
          --warmup-epochs 0.5 --epochs "$EPOCHS" --augment light)
if [[ ${FREEZE_BN:-0} == 1 ]]; then SCHEDULE+=(--freeze-batchnorm); fi
if [[ ${HEAD_ONLY:-0} -gt 0 ]]; then SCHEDULE+=(--head-only-epochs "$HEAD_ONLY"); fi
TEACHER=(--teacher "$SHARED/models/face_recognition_sface_2021dec_fp32_ort.onnx" --distill-weight 5)

evaluate() {  # MODEL -> MODEL's name.eval-{lfw,lfw-dev,holdout}.txt under OUT
  local model=$1 name; name=$(basename "$model")
  keras-arcface eval --model "$model" --pairs "$SHARED/data/lfw/pairs.txt" --images "$SHARED/data/lfw/aligned" \
      > "$OUT/$name.eval-lfw.txt"
  keras-arcface eval --model "$model" --calibration-pairs "$SHARED/data/lfw/pairsDevTrain.txt" \
      --pairs "$SHARED/data/lfw/pairsDevTest.txt" --images "$SHARED/data/lfw/aligned" > "$OUT/$name.eval-lfw-dev.txt"
  keras-arcface eval --model "$model" --pairs benchmarks/celeba-holdout/pairs.txt \
      --images benchmarks/celeba-holdout/images > "$OUT/$name.eval-holdout.txt"
}

mkdir -p "$OUT"
if [[ ${1:-} == eval ]]; then evaluate "$2"; exit; fi
for run in "$@"; do
  case $run in
    both) extra=("${TEACHER[@]}") ;;
    distill) extra=("${TEACHER[@]}" --classification-weight 0) ;;
    arcface) extra=() ;;
    *) echo "unknown run $run" >&2; exit 2 ;;
  esac
  # The teacher's embeddings of the training images are the same for every run: reuse them.
  cache=$(ls "$OUT"/*/teacher_embeddings.npz 2>/dev/null | head -1 || true)
  if [[ $run != arcface && -n $cache && ! -e $OUT/$run/config.json ]]; then
    mkdir -p "$OUT/$run" && cp -n "$cache" "$OUT/$run/"
  fi
  /usr/bin/time -f "$run: %e s wall, %M KB peak" keras-arcface train "${DATA[@]}" "${NET[@]}" "${SCHEDULE[@]}" \
      "${extra[@]}" --output "$OUT/$run"
  evaluate "$OUT/$run"
done

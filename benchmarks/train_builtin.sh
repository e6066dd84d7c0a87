#!/usr/bin/env bash
# Re-trains the built-in descriptors shipped in descriptor/weights/ with the project's own
# `inpaint train`, on images that ship with scikit-image (offline). skimage:coffee is held out
# for benchmarks/weights_report.py. Logs go to benchmarks/results/weights/ ($LOGS).
# VAE_CORPUS=DIR adds a folder of photos (e.g. data/paper/images from `make paper-data`) to the
# vae's training images, reduced to a 1024-px longer side; the other options stay the same.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES="skimage:astronaut skimage:chelsea skimage:rocket skimage:immunohistochemistry \
skimage:hubble_deep_field skimage:retina skimage:brick skimage:grass skimage:gravel \
skimage:moon skimage:camera skimage:coins skimage:clock"
OUT=${OUT:-descriptor/weights}
LOGS=${LOGS:-benchmarks/results/weights}
# One thread: small-batch training is fastest so on 2 cores, and the run is repeatable.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT" "$LOGS"
for arch in ${ARCHS:-v32 v128 chen vae}; do
  patches=200000
  extra=""
  [ "$arch" = chen ] && patches=100000   # full-batch L-BFGS: keep the matrix small
  # vae (seed paper 2): RGB 16x16 patches for inpainting, latent 128, gamma*BCE + KL, Adam 1e-3
  [ "$arch" = vae ] && extra="--patch-size 16 --latent 128 --gamma 10 --channels 3"
  [ "$arch" = vae ] && [ -n "${VAE_CORPUS:-}" ] && extra="$VAE_CORPUS --max-side 1024 $extra"
  .venv/bin/inpaint train $IMAGES --arch "$arch" --patches "$patches" --epochs "${EPOCHS:-6}" \
      --patience 3 --seed 0 --device cpu $extra -o "$OUT/$arch.pt" --force 2>&1 \
      | tee "$LOGS/train_$arch.log"
done

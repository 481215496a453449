#!/usr/bin/env bash
# The recipe behind the shipped weights, as one command (run from the repository root):
#
#   bash weights/recipe.sh                 # the paper's recipe (GPU: HR 160 patches, batch 8, long)
#   PRESET=cpu bash weights/recipe.sh      # the scaled-down CPU recipe of weights/README.md
#
# Trains JSInet then JSI-GAN for x2 and x4 on DATA, writes the held-out test set, evaluates the
# models and the two baselines on it (psnr, ssim, mpsnr, hdrvdp) into RUNS/eval-*.json, and
# prints the sha256 of each weights file for sdr2hdr/zoo.py. It does not copy anything into
# weights/: check the bar in weights/README.md first.
set -euo pipefail
DATA=${DATA:-../shared/data/stills}
RUNS=${RUNS:-runs/recipe}
PRESET=${PRESET:-paper}
SCALES=${SCALES:-2 4}
mkdir -p "$RUNS"

if [ "$PRESET" = cpu ]; then
  # What fits a 2-core CPU in about an hour per model (see weights/README.md for what was run).
  X2="--steps 4000 --hr-patch 64 --val-interval 200 --ckpt-interval 200 --threads 2"
  X4="--steps 3000 --hr-patch 128 --val-interval 250 --ckpt-interval 250 --threads 2"
  GAN="--steps 150 --hr-patch 160 --val-interval 50 --ckpt-interval 50 --threads 2"
  VAL="--val-patches 64"
else
  # The paper: 250 epochs of batch 8 at HR 160 (x0.1 at 80 % and 90 %), then 10 epochs of JSI-GAN.
  X2="--epochs 250"
  X4="--epochs 250"
  GAN="--epochs 10"
  VAL="--val-patches 500"
fi

sdr2hdr testset --data "$DATA" --out "$RUNS/testset"
for s in $SCALES; do
  opts=$X2; [ "$s" = 4 ] && opts=$X4
  # shellcheck disable=SC2086
  sdr2hdr train --data "$DATA" --scale "$s" --stage jsinet --out "$RUNS/x$s" $opts $VAL -q
  # shellcheck disable=SC2086
  sdr2hdr train --data "$DATA" --scale "$s" --stage jsigan --out "$RUNS/x$s-gan" \
    --init "$RUNS/x$s/jsinet-x$s-best.safetensors" $GAN $VAL -q
  for m in "$RUNS/x$s/jsinet-x$s-best.safetensors" "$RUNS/x$s-gan/jsigan-x$s-last.safetensors" \
           "bt2408-x$s" "inverse-reinhard-x$s"; do
    name=$(basename "$m" .safetensors)
    sdr2hdr eval --model "$m" --input "$RUNS/testset/testset_SDR_x$s.mat" \
      --reference "$RUNS/testset/testset_HDR.mat" --metrics psnr,ssim,mpsnr,hdrvdp \
      --json "$RUNS/eval-x$s-$name.json" -q
  done
done
sha256sum "$RUNS"/x*/js*-best.safetensors "$RUNS"/x*-gan/jsigan-*-last.safetensors

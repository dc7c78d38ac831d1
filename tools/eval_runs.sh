#!/usr/bin/env bash
# The `symcodec eval` runs behind results/cifar10/eval*.json and results/mnist/eval*.json (all 10,000 test images).
#   tools/eval_runs.sh [cifar10 | cifar10-airnet3 | cifar10-issue7 | mnist | all]
set -eu
cd "$(dirname "$0")/.."
SC=${SC:-.venv/bin/symcodec}
D=../shared/datasets
Q=10,30,50,75,90
case "${1:-all}" in
  cifar10)  # the seed's table (K=128..2048) beside JPEG and WebP, clean-trained and reconstruction-trained nets
    $SC eval $D/cifar10-jpeg/test.tar -m cifar10-airnet2 -m cifar10-airnet2-sym \
        --codec sym:cifar10-2x2-k128,cifar10-2x2-k256,cifar10-2x2-k512,cifar10-2x2-k1024,cifar10-2x2-k2048 \
        --codec sym:cifar10-ycc420-k512,cifar10-ycc420-k1024,cifar10-2x2-k2048-ctx \
        --codec jpeg:$Q --codec webp:$Q \
        --json results/cifar10/eval.json --plot results/cifar10/eval.png ;;
  cifar10-airnet3)  # the seed's table again with the wider clean-trained net (airbench94 widths, weights/cifar10-airnet3)
    $SC eval $D/cifar10-jpeg/test.tar -m cifar10-airnet3 \
        --codec sym:cifar10-2x2-k128,cifar10-2x2-k256,cifar10-2x2-k512,cifar10-2x2-k1024,cifar10-2x2-k2048 \
        --codec sym:cifar10-ycc420-k512-ppm,cifar10-ycc420-k1024 --codec jpeg:$Q --codec webp:$Q \
        --json results/cifar10/eval-airnet3.json --plot results/cifar10/eval-airnet3.png ;;
  cifar10-issue7)  # entropy model 3 codebooks (same centroids as ycc420-k512 and k2048)
    $SC eval $D/cifar10-jpeg/test.tar -m cifar10-airnet2 -m cifar10-airnet2-sym \
        --codec sym:cifar10-ycc420-k512-ppm,cifar10-2x2-k2048-ppm \
        --json results/cifar10/eval-issue7.json --plot results/cifar10/eval-issue7.png ;;
  mnist)
    $SC eval $D/mnist/t10k-images.idx3-ubyte.gz -m mnist-clean -m mnist-sym \
        --codec sym:mnist-2x2-k32,mnist-2x2-k64,mnist-2x2-k128,mnist-2x2-k256 --codec jpeg:$Q --codec webp:$Q \
        --json results/mnist/eval.json --plot results/mnist/eval.png ;;
  all) "$0" cifar10; "$0" cifar10-airnet3; "$0" cifar10-issue7; "$0" mnist ;;
esac

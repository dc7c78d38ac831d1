#!/usr/bin/env bash
# The robustness runs behind results/robustness/*.json, one after another (each resumes from its state file).
# Budget-limited on a shared 2-core CPU: image counts, steps, restarts and EOT draws are stated in each JSON.
#   tools/robustness_runs.sh [all | cifar-seed | cifar-adaptive EPS TAG [ATTACKS] | cifar-random EPS TAG |
#                             cifar-seed-model EPS TAG | mnist EPS TAG]
# (N=images, default 500; each run resumes from results/robustness/state/TAG.state)
set -u
cd "$(dirname "$0")/.."
SC=${SC:-.venv/bin/symcodec}
CB=cifar10-2x2-k2048
R=results/robustness
S=${STATE_DIR:-$R/state}
MODEL=${CIFAR_MODEL:-cifar10-airnet}
SEED_MODEL=${SEED_MODEL:-seed-cifar10}
SURR=${CIFAR_SURROGATE:-cifar10-clean}
MNIST_MODEL=${MNIST_MODEL:-mnist-clean}
MNIST_SURR=${MNIST_SURROGATE:-mnist-surrogate}
N=${N:-500}
mkdir -p $S
run() { echo "== $(date -u +%H:%M:%S) $*" >&2; "$SC" robustness "$@" || echo "FAILED: $*" >&2; }
TM='model-pgd:steps=10+transfer:steps=10'
ADAPT='fgsm+pgd+apgd-ce+apgd-dlr+apgd-t:targets=3+pgd-soft+reachable+square'
# white-box attacks in the order run (each only on the examples every earlier one failed to break); eot-pgd runs on
# randomized purifiers only, pgd-soft on VQ ones, reachable on the deterministic VQ; cw-l2 (unbounded L2) once per defense
MNIST_ADAPT='fgsm+pgd+eot-pgd:steps=30;eot=20+apgd-ce+apgd-dlr+apgd-t:targets=3+pgd-soft+reachable+square+cw-l2'
case "${1:-all}" in
  cifar-seed)  # SymDNN's weak protocol beside adaptive attacks, same model and images (standalone numbers)
    run cifar10 --model $SEED_MODEL --defense sym:$CB,random=25 --defense sym:$CB \
        --attack 'seed-bpda+pgd:restarts=1+eot-pgd:steps=30;eot=10' --eps 4/255,8/255 --limit 200 --no-early-stop \
        --json $R/cifar10-seed-vs-adaptive.json --state $S/cifar10-seed-vs-adaptive.state ;;
  cifar-adaptive)  # threat models 1 and 2 (standalone, first), then white-box adaptive attacks on the survivors
    run cifar10 --model $MODEL --surrogate $SURR --defense none --defense sym:$CB --defense bits:5 --defense jpeg:50 \
        --defense jpeg:75 --attack "$TM+$ADAPT${4:++$4}" --eps "$2" --limit $N \
        --json $R/cifar10-$3.json --state $S/cifar10-$3.state ;;
  cifar-random)  # the randomized purifier: threat models 1 and 2, then STE PGD, then EOT-20 PGD on the survivors
    run cifar10 --model $MODEL --surrogate $SURR --defense sym:$CB,random=25 \
        --attack "$TM+pgd:restarts=1+eot-pgd:steps=30;eot=20" --eps "$2" --limit $N \
        --json $R/cifar10-random-$3.json --state $S/cifar10-random-$3.state ;;
  cifar-seed-model)  # SymDNN's weak protocol beside adaptive attacks on our CIFAR model and the first N adaptive images
    run cifar10 --model $MODEL --defense sym:$CB,random=25 --defense sym:$CB \
        --attack 'seed-bpda+pgd:restarts=1+eot-pgd:steps=30;eot=20' --eps "$2" --limit $N --no-early-stop \
        --json $R/cifar10-seed-vs-adaptive-$3.json --state $S/cifar10-seed-vs-adaptive-$3.state ;;
  mnist)  # every MNIST defense: threat models 1 and 2 (standalone), then white-box adaptive attacks on the survivors
    run mnist --model $MNIST_MODEL --surrogate $MNIST_SURR --defense none --defense sym:mnist-2x2-k256 \
        --defense sym:mnist-2x2-k256,random=25 --defense jpeg:75 --defense bits:1 --attack "$TM+$MNIST_ADAPT" \
        --eps "$2" --limit $N --json $R/mnist-$3.json --state $S/mnist-$3.state ;;
  all)  # the image counts behind the committed results
    "$0" cifar-seed
    N=1000 "$0" cifar-adaptive 8/255 eps8
    N=1000 "$0" cifar-adaptive 4/255 eps4
    N=200 "$0" cifar-adaptive 2/255 eps2
    N=300 "$0" cifar-random 8/255,4/255 eps8-4
    N=300 "$0" mnist 0.3,0.2,0.1 all ;;
esac

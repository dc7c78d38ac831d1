#!/usr/bin/env bash
# The robustness runs behind results/robustness/*.json, one after another (each resumes from its state file).
# Budget-limited on a shared 2-core CPU: image counts, steps, restarts and EOT draws are stated in each JSON.
#   tools/robustness_runs.sh [all | airnet | cifar-seed | cifar-adaptive EPS TAG [ATTACKS] | cifar-random EPS TAG | cifar-cwl2 |
#                             cifar-seed-model EPS TAG | mnist EPS TAG | cifar-adaptive-v1 | cifar-random-v1 | mnist-v1]
# The *-v1 modes are the earlier protocol (cifar10-clean, 2 PGD restarts, no APGD-CE/T, EOT-10, no MNIST surrogate)
# behind the older committed JSONs; `all` reruns exactly the committed results, `airnet` the CIFAR-10 runs on
# cifar10-airnet2 (Square 5000 was added only where few images survived: JPEG q50 at 4 and 8/255, q75 at 8/255).
# (N=images, default 500; each run resumes from results/robustness/state/TAG.state; DEFS="--defense ..." overrides
#  a mode's defense list, EXTRA="--device cuda --batch 500" adds options: tools/robustness_gpu.sh runs parts that way;
#  TM, ADAPT, RAND_ADAPT and SEED_ATTACKS override attack lists, for smoke tests only)
set -u
cd "$(dirname "$0")/.."
SC=${SC:-.venv/bin/symcodec}
CB=cifar10-2x2-k2048
R=${R_DIR:-results/robustness}
S=${STATE_DIR:-$R/state}
MODEL=${CIFAR_MODEL:-cifar10-airnet2}
SEED_MODEL=${SEED_MODEL:-seed-cifar10}
SURR=${CIFAR_SURROGATE:-cifar10-clean}
MNIST_MODEL=${MNIST_MODEL:-mnist-clean}
MNIST_SURR=${MNIST_SURROGATE:-mnist-surrogate}
N=${N:-500}
mkdir -p $S
EXTRA=${EXTRA:-}
run() { echo "== $(date -u +%H:%M:%S) $* $EXTRA" >&2; "$SC" robustness "$@" $EXTRA || { echo "FAILED: $*" >&2; return 1; }; }
TM=${TM:-'model-pgd:steps=10+transfer:steps=10'}
# white-box attacks in the order run (each only on the examples every earlier one failed to break); eot-pgd runs on
# randomized purifiers only, pgd-soft on VQ ones, reachable on the deterministic VQ; cw-l2 (unbounded L2) once per defense
ADAPT=${ADAPT:-'fgsm+pgd+apgd-ce+apgd-dlr+apgd-t:targets=3+pgd-soft+reachable+square'}
RAND_ADAPT=${RAND_ADAPT:-'pgd:restarts=1+eot-pgd:steps=30;eot=20'}
SEED_ATTACKS=${SEED_ATTACKS:-'seed-bpda+pgd:restarts=1+eot-pgd:steps=30;eot=20'}
ADAPT_V1='fgsm+pgd:restarts=2+apgd-dlr+pgd-soft+reachable+square:queries=500'
MNIST_V1='fgsm+pgd:restarts=2+apgd-dlr+pgd-soft+reachable+eot-pgd:steps=30;eot=10+square:queries=500'
MNIST_ADAPT='fgsm+pgd+eot-pgd:steps=30;eot=20+apgd-ce+apgd-dlr+apgd-t:targets=3+pgd-soft+reachable+square+cw-l2'
case "${1:-all}" in
  cifar-seed)  # SymDNN's weak protocol beside adaptive attacks, same model and images (standalone numbers)
    run cifar10 --model $SEED_MODEL --defense sym:$CB,random=25 --defense sym:$CB \
        --attack 'seed-bpda+pgd:restarts=1+eot-pgd:steps=30;eot=10' --eps 4/255,8/255 --limit 200 --no-early-stop \
        --json $R/cifar10-seed-vs-adaptive.json --state $S/cifar10-seed-vs-adaptive.state ;;
  cifar-adaptive)  # threat models 1 and 2 (standalone, first), then white-box adaptive attacks on the survivors
    run cifar10 --model $MODEL --surrogate $SURR ${DEFS:---defense none --defense sym:$CB --defense bits:5 --defense jpeg:50 \
        --defense jpeg:75} --attack "$TM+$ADAPT${4:++$4}" --eps "$2" --limit $N \
        --json $R/cifar10-$3.json --state $S/cifar10-$3.state ;;
  cifar-random)  # the randomized purifier: threat models 1 and 2, then STE PGD, then EOT-20 PGD on the survivors
    run cifar10 --model $MODEL --surrogate $SURR ${DEFS:---defense sym:$CB,random=25} \
        --attack "$TM+$RAND_ADAPT" --eps "$2" --limit $N \
        --json $R/cifar10-random-$3.json --state $S/cifar10-random-$3.state ;;
  cifar-seed-model)  # SymDNN's weak protocol beside adaptive attacks on our CIFAR model (a subset of the adaptive images)
    run cifar10 --model $MODEL ${DEFS:---defense sym:$CB,random=25 --defense sym:$CB} \
        --attack "$SEED_ATTACKS" --eps "$2" --limit $N --no-early-stop \
        --json $R/cifar10-seed-vs-adaptive-$3.json --state $S/cifar10-seed-vs-adaptive-$3.state ;;
  cifar-cwl2)  # CW-L2 (unbounded, SymDNN's settings) once per deterministic defense on cifar10-airnet2 (not in the worst case)
    run cifar10 --model $MODEL --defense none --defense sym:$CB --defense bits:5 --defense jpeg:50 --defense jpeg:75 \
        --attack cw-l2 --eps 8/255 --limit $N --threads 2 --json $R/cifar10-cwl2-airnet.json --state $S/cifar10-cwl2-airnet.state ;;
  mnist)  # every MNIST defense: threat models 1 and 2 (standalone), then white-box adaptive attacks on the survivors
    run mnist --model $MNIST_MODEL --surrogate $MNIST_SURR --defense none --defense sym:mnist-2x2-k256 \
        --defense sym:mnist-2x2-k256,random=25 --defense jpeg:75 --defense bits:1 --attack "$TM+$MNIST_ADAPT" \
        --eps "$2" --limit $N --json $R/mnist-$3.json --state $S/mnist-$3.state ;;
  cifar-adaptive-v1)
    run cifar10 --model cifar10-clean --surrogate seed-cifar10-holdout --defense none --defense sym:$CB --defense jpeg:75 \
        --defense jpeg:50 --defense bits:5 --attack "$TM+$ADAPT_V1" --eps "$2" --limit $N \
        --json $R/cifar10-$3.json --state $S/cifar10-$3.state ;;
  cifar-random-v1)
    run cifar10 --model cifar10-clean --surrogate seed-cifar10-holdout --defense sym:$CB,random=25 \
        --attack "$TM+pgd:restarts=1+eot-pgd:steps=30;eot=10" --eps "$2" --limit $N \
        --json $R/cifar10-random-$3.json --state $S/cifar10-random-$3.state ;;
  mnist-v1)
    run mnist --model $MNIST_MODEL --defense none --defense sym:mnist-2x2-k256 --defense sym:mnist-2x2-k256,random=25 \
        --defense jpeg:75 --defense bits:1 --attack "model-pgd:steps=10+$MNIST_V1" \
        --eps "$2" --limit $N --json $R/mnist-$3.json --state $S/mnist-$3.state ;;
  all)  # exactly the runs and image counts behind the committed results
    "$0" cifar-seed
    N=1000 "$0" cifar-adaptive-v1 8/255 eps8
    N=1000 "$0" cifar-adaptive-v1 4/255 eps4
    N=300 "$0" cifar-random-v1 8/255,4/255 eps8-4
    N=300 "$0" mnist-v1 0.3,0.2,0.1 all
    N=1000 "$0" mnist 0.3 eps0.3
    N=1000 "$0" mnist 0.1 eps0.1
    N=1000 "$0" mnist 0.2 eps0.2
    "$0" airnet
    N=1000 "$0" cifar-cwl2 ;;
  airnet)  # the CIFAR-10 runs on cifar10-airnet2: parallel parts (one per run, defense and eps), then joined; on a GPU
           # that took 8 minutes (an H200), on a 2-core CPU it takes many hours (EXTRA="--device cpu")
    bash tools/robustness_gpu.sh "${PARTS_DIR:-/tmp/symcodec-airnet-parts}" "${SECONDS_LIMIT:-100000}" &&
      .venv/bin/python tools/robustness_merge.py "${PARTS_DIR:-/tmp/symcodec-airnet-parts}" --out "$R" --state-out "$S" ;;
esac

#!/usr/bin/env bash
# The robustness runs behind results/robustness/*.json, one after another (each resumes from its state file).
# Budget-limited on a shared 2-core CPU: image counts, steps, restarts and EOT draws are stated in each JSON.
set -u
cd "$(dirname "$0")/.."
SC=${SC:-.venv/bin/symcodec}
CB=cifar10-2x2-k2048
R=results/robustness
S=${STATE_DIR:-$R/state}
MODEL=${CIFAR_MODEL:-seed-cifar10}
SURR=${CIFAR_SURROGATE:-seed-cifar10-holdout}
mkdir -p $S
run() { echo "== $(date -u +%H:%M:%S) $*" >&2; "$SC" robustness "$@" || echo "FAILED: $*" >&2; }
adaptive() {  # eps tag: full white-box adaptive worst case; early stop = each attack sees the survivors only
  run cifar10 --model $MODEL --defense none --defense sym:$CB --defense jpeg:75 --defense jpeg:50 --defense bits:5 \
      --attack 'fgsm+pgd:restarts=2+apgd-dlr+pgd-soft+reachable+square:queries=500' --eps "$1" --limit 500 \
      --json $R/cifar10-adaptive-$2.json --state $S/cifar10-adaptive-$2.state
}
# 1. SymDNN's weak protocol beside adaptive attacks, same model and images (standalone numbers).
run cifar10 --model $MODEL --defense sym:$CB,random=25 --defense sym:$CB \
    --attack 'seed-bpda+pgd:restarts=1+eot-pgd:steps=30;eot=10' --eps 4/255,8/255 --limit 200 --no-early-stop \
    --json $R/cifar10-seed-vs-adaptive.json --state $S/cifar10-seed-vs-adaptive.state
adaptive 8/255 eps8
# 2. Threat models 1 (model white-box, defense black-box) and 2 (transfer from a separately trained model).
run cifar10 --model $MODEL --surrogate $SURR --defense none --defense sym:$CB --defense sym:$CB,random=25 \
    --defense jpeg:75 --defense jpeg:50 --defense bits:5 --attack 'model-pgd:steps=10+transfer:steps=10' \
    --eps 2/255,4/255,8/255 --limit 500 --no-early-stop \
    --json $R/cifar10-transfer.json --state $S/cifar10-transfer.state
adaptive 4/255 eps4
adaptive 2/255 eps2

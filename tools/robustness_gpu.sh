#!/usr/bin/env bash
# The planned CIFAR-10 robustness runs (tools/robustness_runs.sh `next`) on one CUDA GPU, split into one
# process per (run, defense, eps) so the CPU-bound parts (Pillow JPEG, Python) use every core while the GPU
# serves them all; then tools/robustness_merge.py joins the parts into the usual JSONs.
#   tools/robustness_gpu.sh OUTDIR [SECONDS]   (parts still running SECONDS after the start are stopped; their
#   state files resume with tools/robustness_runs.sh after tools/robustness_merge.py has joined them)
# Needs: python3 with torch (CUDA), numpy, numba, pillow, click, tqdm, torchattacks; ../shared/datasets (or
# SYMCODEC_SHARED). faiss and constriction are not needed: on CUDA the purifier searches centroids with torch.
set -u
cd "$(dirname "$0")/.."
OUTDIR=${1:?usage: robustness_gpu.sh OUTDIR [SECONDS]}
END=$(( $(date +%s) + ${2:-3000} ))
export R_DIR=$OUTDIR STATE_DIR=$OUTDIR/state N=${N:-1000} EXTRA=${EXTRA:---device cuda --batch 500}
mkdir -p "$OUTDIR/logs" "$STATE_DIR"
CB=cifar10-2x2-k2048
RUNS=tools/robustness_runs.sh
PLAN=$OUTDIR/plan.tsv   # output JSON <tab> part JSONs in defense-major, eps-minor order
: > "$PLAN"
part() {  # part MODE EPS BASE_TAG IDX DEFENSE [EXTRA_ATTACKS]
  local mode=$1 eps=$2 tag=$3.part-$4 def=$5
  DEFS="--defense $def" timeout --signal=INT $(( END - $(date +%s) )) bash "$RUNS" "$mode" "$eps" "$tag" ${6:-} \
    >> "$OUTDIR/logs/$mode-$tag.log" 2>&1
  echo "$tag exit $?" >> "$OUTDIR/logs/exits.txt"
}
ADEF=(none sym:$CB bits:5 jpeg:50 jpeg:75)
declare -A EPS=([eps2]=2/255 [eps4-airnet]=4/255 [eps8-airnet]=8/255)
# phase 1: the undefended parts compute (and cache in the state folder) every eps's source images for
# threat models 1 and 2, so that the parallel parts below all read the same adversarial images
for tag in eps2 eps4-airnet eps8-airnet; do part cifar-adaptive "${EPS[$tag]}" "$tag" 0 none & done
wait
for tag in eps2 eps4-airnet eps8-airnet; do
  line="cifar10-$tag.json"
  for i in 0 1 2 3 4; do
    [ "$i" -gt 0 ] && part cifar-adaptive "${EPS[$tag]}" "$tag" "$i" "${ADEF[$i]}" &
    line+=$'\t'"cifar10-$tag.part-$i.json"
  done
  echo "$line" >> "$PLAN"
done
line="cifar10-random-airnet.json"
i=0
for e in 8/255 4/255 2/255; do
  part cifar-random "$e" airnet "$i" "sym:$CB,random=25" &
  line+=$'\t'"cifar10-random-airnet.part-$i.json"
  i=$((i + 1))
done
echo "$line" >> "$PLAN"
line="cifar10-seed-vs-adaptive-airnet.json"
i=0
for def in "sym:$CB,random=25" "sym:$CB"; do
  for e in 4/255 8/255; do
    part cifar-seed-model "$e" airnet "$i" "$def" &
    line+=$'\t'"cifar10-seed-vs-adaptive-airnet.part-$i.json"
    i=$((i + 1))
  done
done
echo "$line" >> "$PLAN"
wait
# phase 3: Square with 5000 queries where few images survive and JPEG's straight-through gradient is weak (each
# part resumes its state, so only the new attack runs); JPEG q75 at 2 and 4/255 keeps ~800 survivors: too slow here
part cifar-adaptive 8/255 eps8-airnet 4 jpeg:75 'square:queries=5000' &
part cifar-adaptive 8/255 eps8-airnet 3 jpeg:50 'square:queries=5000' &
part cifar-adaptive 4/255 eps4-airnet 3 jpeg:50 'square:queries=5000' &
wait
cat "$OUTDIR/logs/exits.txt"

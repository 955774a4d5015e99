#!/usr/bin/env bash
# The runs behind docs/benchmarks.md: one bench.py invocation per workload, rows alternating,
# 2 threads. REFS is a folder holding checkouts of the original code (never part of this repo):
#   ArrowLuo/CLIP4Clip foolwood/DRL m-bain/frozen-in-time antoine77340/S3D_HowTo100M Atze00/MoViNet-pytorch
#   facebookresearch/fairseq (VideoCLIP: examples/MMPT) gingsi/coot-videotext papermsucode/mdmmt
# each in a folder named owner+name. VideoCLIP's original also needs the transformers 3.x it was
# written for, unpacked beside them (never installed):
#   pip download --no-deps transformers==3.4.0 && python -m zipfile -e transformers-3.4.0-*.whl $REFS/transformers-3.4.0
# Usage: REFS=/path/to/checkouts benchmarks/targets.sh [workload ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
REFS=${REFS:?set REFS to the folder of the original checkouts}
OUT=benchmarks/results
COMMON=(--threads 2 --repeats 5)
run() {  # run NAME bench.py-arguments...: one fresh JSON file per workload
  local name=$1; shift
  rm -f "$OUT/$name.jsonl"
  python benchmarks/bench.py "$@" "${COMMON[@]}" --json "$OUT/$name.jsonl" --markdown
}
declare -A WORKLOADS=(
  [clip4clip]="--op clip4clip --batch 4 --frames 12 --backend torch openvino --reference $REFS/ArrowLuo+CLIP4Clip"
  [drl]="--op drl --batch 4 --frames 12 --backend torch openvino --reference $REFS/foolwood+DRL"
  [frozen_in_time]="--op frozen_in_time --batch 4 --frames 4 --reference $REFS/m-bain+frozen-in-time"
  [s3d]="--op s3d --batch 1 --frames 300 --backend torch openvino --reference $REFS/antoine77340+S3D_HowTo100M"
  [movinet_a0_stream]="--op movinet --variant a0-stream --stream --batch 1 --frames 50 --backend torch openvino --reference $REFS/Atze00+MoViNet-pytorch"
  [movinet_a2_stream]="--op movinet --variant a2-stream --stream --batch 1 --frames 50 --backend torch openvino --reference $REFS/Atze00+MoViNet-pytorch"
  [movinet_a0_base]="--op movinet --variant a0-base --batch 1 --frames 50 --reference $REFS/Atze00+MoViNet-pytorch"
  [movinet_a2_base]="--op movinet --variant a2-base --batch 1 --frames 50 --reference $REFS/Atze00+MoViNet-pytorch"
  [ircsn152]="--op ircsn152 --batch 1 --frames 32"
  [text_clip]="--op clip4clip --text 32 --batch 8"
  [text_distilbert]="--op frozen_in_time --text 32 --batch 8"
  [text_bert]="--op mdmmt --text 32 --batch 8"
  [videoclip]="--op videoclip --batch 32 --reference $REFS/facebookresearch+fairseq"
  [coot]="--op coot --batch 64 --reference $REFS/gingsi+coot-videotext"
  [mdmmt]="--op mdmmt --batch 32 --reference $REFS/papermsucode+mdmmt"
)
ORDER=(clip4clip frozen_in_time text_clip text_distilbert text_bert s3d movinet_a0_stream movinet_a0_base ircsn152 drl
       movinet_a2_stream movinet_a2_base videoclip coot mdmmt)
for name in "${@:-${ORDER[@]}}"; do
  # shellcheck disable=SC2086
  run "$name" ${WORKLOADS[$name]}
done

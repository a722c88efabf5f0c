#!/usr/bin/env bash
# ParT from weaver-core beside the D1 and D2 data-efficiency studies, then the GPU speed
# comparison of benchmarks/bench_vs_part.py, on one GPU in bf16 (the run behind the ParT rows
# of the README and benchmarks/results/part_d{1,2}_gpu.json, vs_part_gpu.json).
#
#   benchmarks/gpu_part_studies.sh D1_CACHE D2_CACHE OUT_DIR
#
# D1_CACHE, D2_CACHE: the caches the two studies made (`foundation study data-efficiency
# recipes/top_tagging.yaml ... --set data.simulate.jets=8000`, and recipes/quark_gluon.yaml with
# data.simulate.jets=20000). SIZES (default 1000,5000,10000) and SEEDS (3) follow the studies.
set -euo pipefail
d1=$1
d2=$2
out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
export PYTHONUNBUFFERED=1
study() {
    python3 "$here/part_study.py" --sizes "${SIZES:-1000,5000,10000}" --seeds "${SEEDS:-3}" \
        --epochs 15 --device cuda --dtype bfloat16 --names weaver-part jetformer-tiny "$@"
}
study --recipe "$here/../recipes/top_tagging.yaml" --cache "$d1" --out "$out/part_d1_gpu.json" \
    2>&1 | tee "$out/part_d1_gpu.log"
study --recipe "$here/../recipes/quark_gluon.yaml" --cache "$d2" --out "$out/part_d2_gpu.json" \
    2>&1 | tee "$out/part_d2_gpu.log"
python3 "$here/bench_vs_part.py" --device cuda --dtype bfloat16 --profile --loader-steps 200 \
    --loader-workers 4 --loader-cache "$d1" --names jetformer-s jetformer-tiny part \
    --out "$out/vs_part_gpu.json" 2>&1 | tee "$out/vs_part_gpu.log"

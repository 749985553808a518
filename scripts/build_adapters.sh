#!/usr/bin/env bash
# Builds the default diffuse adapters shipped in adapters/ for the embedded model (make adapters).
# Settings fit a 2-core CPU: one prompt per step, an unbiased subsample of targets per step for big lists.
set -euo pipefail
cd "$(dirname "$0")/.."
SG=${SG:-.venv/bin/synthgen}
COMMON="--prompts-per-step 1 --overwrite --seed 0"
# two items: bf16 logits (a step of 1/8 nat at their size) would bias the split, so fp32
$SG build-adapter adapters/gender.yaml --out adapters/gender --steps 150 --gamma 0.0005 --precision fp32 --objective q $COMMON
$SG build-adapter adapters/numbers_1_100.yaml --out adapters/numbers_1_100 --steps 60 --objective paper $COMMON
$SG build-adapter adapters/first_names.yaml --out adapters/first_names --steps 40 --max-targets 300 --objective paper $COMMON
$SG build-adapter adapters/surnames.yaml --out adapters/surnames --steps 250 --max-targets 300 --gamma 0.008 --objective q $COMMON
$SG build-adapter adapters/birth_dates.yaml --out adapters/birth_dates --steps 40 --max-targets 200 --audit-prompts 1 --objective paper $COMMON
# the Q objective: the biography template decodes these inside exactly their own lists
# (choices: {spec: careers}); stopped when the loss is within 0.8 % of H(p*) (~0.08 bits at H ~ 10), as the
# moving average says and the exact whole-list loss confirms (the shipped careers and birth places
# were built before that confirmation existed: the moving average alone stopped them)
$SG build-adapter adapters/careers.yaml --out adapters/careers --steps 250 --max-targets 300 --gamma 0.008 --objective q $COMMON
$SG build-adapter adapters/birth_places.yaml --out adapters/birth_places --steps 250 --max-targets 200 --gamma 0.008 --objective q $COMMON
# conditional: 14 lists (sex x decade) of 500 names, one adapter, trained for the trie sampler (--objective q)
$SG build-adapter adapters/first_names_by_decade.yaml --out adapters/first_names_by_decade --steps 150 --max-targets 500 --audit-prompts 1 --objective q $COMMON

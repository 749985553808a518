#!/usr/bin/env bash
# Builds the default diffuse adapters shipped in adapters/ for the embedded model (make adapters).
# Settings fit a 2-core CPU: one prompt per step, an unbiased subsample of targets per step for big lists.
set -euo pipefail
cd "$(dirname "$0")/.."
SG=${SG:-.venv/bin/synthgen}
COMMON="--prompts-per-step 1 --overwrite --seed 0"
# two items: an fp32-trained split moves by ~2 points in a bf16 engine (50.9 -> 53.1 % male), so the loss is
# the mean of an fp32 and a bf16 pass (--precision both): the biography prompt's split is 47.8 % / 50.0 % male
$SG build-adapter adapters/gender.yaml --out adapters/gender --steps 250 --gamma 0.0002 --precision both --objective q $COMMON
# numbers and birth dates: the paper objective first (P's mass on the list: usable with --decode free too), then
# the Q objective from there until its rule stops it (numbers 25 steps, birth dates 13: KL(Q||p*) 0.022 / 0.05 bits)
$SG build-adapter adapters/numbers_1_100.yaml --out out/numbers_paper --steps 60 --objective paper $COMMON
$SG build-adapter adapters/numbers_1_100.yaml --out adapters/numbers_1_100 --init out/numbers_paper --steps 80 --gamma 0.008 --objective q --prompts-per-step 1 --overwrite --seed 1
# the big single-prompt lists: the Q objective at lr 3e-3 decaying to 3e-4 (--lr-schedule cosine) with the
# keep term (KL from the base on general text) holding the capability guard; stopped when the loss is within
# 0.6 % of H(p*) (~0.05 bits at H ~ 9-10), as the moving average says and the exact whole-list loss confirms.
# The biography template decodes these inside exactly their own lists (choices: {spec: careers}).
# (benchmarks/train_settings.py: first_names 0.093 bits in 60 steps / 201 s this way, against 161 steps /
# ~880 s at a constant 5e-4)
FAST="--lr 0.003 --lr-schedule cosine --keep-weight 0.3 --gamma 0.006 --objective q"
$SG build-adapter adapters/first_names.yaml --out adapters/first_names --steps 70 --max-targets 300 $FAST $COMMON
$SG build-adapter adapters/surnames.yaml --out adapters/surnames --steps 70 --max-targets 300 $FAST $COMMON
# careers and birth places (H ~ 10 bits) are still ~0.11 bits off at 70 steps: a second, short stage from there at
# lr 1e-3 decaying to 1e-4, stopped by the rule at --gamma 0.009 (~0.1 bits)
S2="--lr 0.001 --lr-schedule cosine --keep-weight 0.3 --gamma 0.009 --objective q --prompts-per-step 1 --overwrite --seed 1"
$SG build-adapter adapters/careers.yaml --out out/careers_stage1 --steps 70 --max-targets 300 $FAST $COMMON
$SG build-adapter adapters/careers.yaml --out adapters/careers --init out/careers_stage1 --steps 40 --max-targets 300 $S2
$SG build-adapter adapters/birth_places.yaml --out out/birth_places_stage1 --steps 70 --max-targets 200 $FAST $COMMON
$SG build-adapter adapters/birth_places.yaml --out adapters/birth_places --init out/birth_places_stage1 --steps 40 --max-targets 200 $S2
$SG build-adapter adapters/birth_dates.yaml --out out/birth_dates_paper --steps 40 --max-targets 200 --audit-prompts 1 --objective paper $COMMON
$SG build-adapter adapters/birth_dates.yaml --out adapters/birth_dates --init out/birth_dates_paper --steps 60 --max-targets 200 --audit-prompts 1 --gamma 0.005 --objective q --prompts-per-step 1 --overwrite --seed 1
# conditional: 14 lists (sex x decade) of 500 names, one adapter, trained for the trie sampler (--objective q).
# Each list sees 1/14 of the steps, so it trains long: three stages, each starting from the last (--init;
# the shipped one: 150 + 200 + 150 steps, KL(Q||p*) 0.325 -> 0.123 -> 0.099 bits, all three at the step cap)
FND="--max-targets 500 --audit-prompts 1 --objective q --prompts-per-step 1 --overwrite"
$SG build-adapter adapters/first_names_by_decade.yaml --out out/fnd_stage1 --steps 150 --seed 0 $FND
$SG build-adapter adapters/first_names_by_decade.yaml --out out/fnd_stage2 --init out/fnd_stage1 --lr 0.001 --steps 200 --gamma 0.008 --seed 1 $FND
$SG build-adapter adapters/first_names_by_decade.yaml --out adapters/first_names_by_decade --init out/fnd_stage2 --lr 0.001 --steps 150 --gamma 0.008 --seed 2 $FND

# coin_lio_suite: the two commands are `make demo` and `make test`; both set up first.
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
export OPENBLAS_NUM_THREADS := 1
export AMENT_PREFIX_PATH := $(VENV)$(if $(AMENT_PREFIX_PATH),:$(AMENT_PREFIX_PATH),)
PYTEST_ARGS ?=

.PHONY: setup test demo pruned-model bench-cocoop photo-check bench-daft bench-loraprune bench-loraprune-datafree eval-pruned bench-executor test-fast lock clean help bench-sim bench-effects bench-seeds bench-photometric bench-lio stress stress-32 soak

help:
	@echo "make demo   - set up, then run the demo graph (bag -> launcher -> nodes)"
	@echo "make test   - set up, then run the whole test suite (pure + multi-process graph tests)"
	@echo "make setup  - idempotent: .venv with pinned ROS 2 Kilted wheels + deps, interfaces built"
	@echo "make lock   - rewrite requirements/constraints.txt from the current venv"

setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest test -q -rR -p no:cacheprovider --timeout 600 $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest test -q -p no:cacheprovider --timeout 600 -m "not graph" $(PYTEST_ARGS)

demo: setup pruned-model
	$(VENV)/bin/coin-lio-suite-demo --out $(CURDIR)/out/demo --text-model $(PRUNED_MODEL)

# The pruned SmolLM2 the demo serves: the 20 % run with the best held-out perplexity at the fair budget (streamed
# Taylor, MLP channels only: --head-share 0, corpus recovery, the fair schedule; docs/loraprune.md), built once (~4 min)
PRUNED_MODEL ?= $(CURDIR)/data/models/smollm2_pruned_20_mlp
pruned-model: setup
	@test -f $(PRUNED_MODEL)/config.json || $(VENV)/bin/loraprune --ratio 0.2 --data pydoc --method streamed_taylor \
	  --head-share 0 --steps 40 --batch-size 2 --prune-every 5 --out $(PRUNED_MODEL)

# Simulated benchmark: every scene into data/sim/ (~8.8 GB at the default 20 s), every odometry on
# each, table in out/bench_sim/table.md. E.g. make bench-sim BENCH_SIM_ARGS="--duration 10 --scenes tunnel,urban"
bench-sim: setup
	$(PY) -m coin_lio.eval.bench_sim --data $(CURDIR)/data/sim --out $(CURDIR)/out/bench_sim $(BENCH_SIM_ARGS)

# The odometries under real-sensor effects (coin_lio.sim): each effect alone at its realistic level (people and cars too),
# all together, a half-sweep column window; tunnel, field, urban; ~15 GB of sequences in data/sim/
bench-effects: setup
	$(PY) -m coin_lio.eval.bench_sim --scenes tunnel,field,urban --duration 10 \
	  --effects none,packets,window,offset,knocks,noise,mixed,movers,realistic --rpe-delta 5 \
	  --methods coin_lio,coin_lio_geometric,kiss_icp,rko_lio --data $(CURDIR)/data/sim --out $(CURDIR)/out/bench_effects

# COIN-LIO over 18 seeds of the field (clean, movers, all effects): a change is judged over seeds,
# not on seed 0 (~12 min; the sequences of seeds 1-17 are removed after their run)
bench-seeds: setup
	$(PY) -m coin_lio.eval.bench_seeds --scenes field --duration 10 --effects none,movers,realistic \
	  --seeds 0-17 --methods coin_lio --data $(CURDIR)/data/sim --out $(CURDIR)/out/bench_seeds $(BENCH_SEEDS_ARGS)

# COIN-LIO where geometry is degenerate, against its geometric mode and the peers, plus ablations
bench-photometric: setup
	$(PY) -m coin_lio.eval.bench_photometric --ablations --data $(CURDIR)/data/sim --out $(CURDIR)/out/bench_photometric

# Per-stage time of the odometry on the simulated sequences, and RSS over a 10-minute run
bench-lio: setup
	$(PY) -m coin_lio.eval.bench_lio stages $(CURDIR)/data/sim/urban_smooth $(CURDIR)/data/sim/tunnel_smooth --config config/coin_lio.yaml --out $(CURDIR)/out/bench_lio
	$(PY) -m coin_lio.eval.bench_lio memory --minutes 10 --out $(CURDIR)/out/bench_lio

# CoCoOp base-to-new: every CoCoOp number in the README (docs/cocoop.md says how long it runs). The
# name- and causal-pooling encoders are built into out/encoders first unless there (~10 min each).
COCOOP_SCHEDULE_SCALE ?= 0.4
bench-cocoop: setup
	$(PY) -m learned_nodes.cocoop.bench --threads 1 --schedule-scale $(COCOOP_SCHEDULE_SCALE) --no-progress \
	  --encoders $(CURDIR)/out/encoders --cache $(CURDIR)/out/feature_cache --out $(CURDIR)/out/bench_cocoop

# The classifier as config/classifier.yaml serves it, on every labelled real photo the packages ship (1 min)
photo-check: setup
	$(PY) -m learned_nodes.cocoop.photo_check --out $(CURDIR)/out/photo_check

# DAFT vs LP / FT / LP-FT + both ablations on MNIST -> 8x8 digits / corrupted, the reference's protocol
# (lr grids swept on ID validation, best epoch on validation, logistic probe), 3 seeds, one thread;
# then FT and DAFT at the same rates with 3x the epochs (the larger budget). Time: docs/daft.md.
# SHOT: the same command with `--stage shot` (not part of these numbers).
bench-daft: setup
	$(PY) -m learned_nodes.daft.bench --backbone efficientnet-lite0 --n-train 500 --epochs 2 --seeds 0 1 2 \
	  --threads 1 --stage compare --no-progress --out $(CURDIR)/out/bench_daft
	mkdir -p $(CURDIR)/out/bench_daft_6ep && cp $(CURDIR)/out/bench_daft/selected.json $(CURDIR)/out/bench_daft_6ep/
	$(PY) -m learned_nodes.daft.bench --backbone efficientnet-lite0 --n-train 500 --epochs 6 --seeds 0 1 2 \
	  --methods ft daft --threads 1 --stage compare --no-progress --out $(CURDIR)/out/bench_daft_6ep

# LoRAPrune on the fair schedule (every method the same steps, the same 50 % of them at its final structure,
# linear lr decay): dense, dense + LoRA, LoRAPrune, streamed Taylor, Taylor (LoRAPrune grouping), LLM-Pruner
# grouping, magnitude, random at 20 / 50 %; pydoc val/test, held-out (licences, Shakespeare) perplexity and the
# instruction check (docs/loraprune.md; ~80 min on two cores). --device cuda on a GPU.
LORAPRUNE_BENCH := $(PY) -m learned_nodes.loraprune.bench --steps 40 --batch-size 2 --prune-every 5 \
	  --eval-tokens 2048 --heldout-tokens 2048 --judge-others 2 --memory-steps 0 --threads 1 --jobs 2 --quiet
bench-loraprune: setup
	$(LORAPRUNE_BENCH) --out $(CURDIR)/out/bench_loraprune --instruct-ratios 0 0.2
# The same with data-free recovery: the dense model writes 96 chat transcripts and distils into the pruned one
# (lora_only, LoRAPrune and the LLM-Pruner grouping at 20 / 50 %; the dense row from bench-loraprune's run when
# there is one; ~60 min on two cores)
DENSE_FROM = $(wildcard $(CURDIR)/out/bench_loraprune/results.json)
bench-loraprune-datafree: setup
	$(LORAPRUNE_BENCH) --out $(CURDIR)/out/bench_loraprune_datafree --methods --distill-methods loraprune \
	  llm_pruner --conversations 96 --instruct-ratios 0 0.2 $(if $(DENSE_FROM),--dense-from $(DENSE_FROM))
# Held-out perplexity and the instruction check of the demo's pruned model against the dense one (~10 min)
eval-pruned: setup pruned-model
	$(PY) -m learned_nodes.loraprune.eval_pruned --model $(PRUNED_MODEL) --out $(CURDIR)/out/eval_pruned

# Model servers' executor under 1 / 4 / 16 / 64 requests in flight: shipped thread pool vs fewer threads vs
# sys.setswitchinterval (GIL starvation of the batch worker?), classifier + backbone (docs/model_servers.md)
bench-executor: setup
	$(PY) -m learned_nodes.bench_executor --out $(CURDIR)/out/bench_executor

# The whole suite under load: 8 concurrent clients per model service + a looped bag into the odometry
stress: setup
	$(PY) -m suite_apps.stress --duration 60 --clients 8 --out $(CURDIR)/out/stress

# The issue-19 load: 16 classify + 16 embed clients (32), answered/sent, lost (must be 0), p50/p95/p99, RSS
stress-32: setup
	$(PY) -m suite_apps.stress --duration 60 --clients 16 --services classify embed --out $(CURDIR)/out/stress32

# 30 minutes of the same at a lower request rate: RSS of every node sampled
soak: setup
	$(PY) -m suite_apps.stress --duration 1800 --clients 2 --out $(CURDIR)/out/soak

lock:
	{ echo "# Pinned versions of everything the venv holds (make lock rewrites it)."; \
	  echo "setuptools==$$($(PY) -c 'import setuptools; print(setuptools.__version__)')"; \
	  $(PY) -m pip freeze --exclude-editable | grep -v -E '^(pip|coin-lio-suite-python)==' \
	  | sed -E -e 's/^torch==([0-9.]+)\+cpu$$/torch==\1/' \
	      -e 's/^([A-Za-z0-9_.-]+) @ file:.*\/[A-Za-z0-9_.]+-([0-9][^-]*)-.*\.whl.*$$/\1==\2/'; \
	} > requirements/constraints.txt

clean:
	rm -rf .colcon out

# One place for the project's commands. VENV can point elsewhere (CI keeps its envs between runs).
VENV ?= .venv
# Where the extra Keras stacks of `make test-stacks` live.
STACKS ?= .stacks
# The TensorFlow that `make install` puts in VENV: CPU wheels (274 MB, not the 572 MB GPU one).
TF_REQUIREMENT ?= tensorflow-cpu>=2.14
# The extras of ig_plugin that `make install` puts in VENV: the dev tools, Ray Data
# (ig_plugin[ray]), MLServer (ig_plugin[serve]) and the V2 clients its tests use
# (ig_plugin[serve-clients]), so that `make test` runs the Ray and server tests too, and numba
# (ig_plugin[fast]), so that n_steps="auto" runs its compiled rounds. The two extra Keras stacks
# leave them out; those tests skip there, and auto runs its numpy rounds.
EXTRAS ?= dev,ray,serve,serve-clients,xrai,pair,fast
PYTHON := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test lint demo examples docs benchmark benchmark-smoke benchmark-serving test-alibi-runtime test-stacks test-tf-keras test-tf2.14 test-captum test-keras-hub benchmark-sequences benchmark-expected-gradients benchmark-metrics benchmark-path-methods benchmark-auto-steps benchmark-batch-size clean

$(PYTHON):
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip

# Installs ig_plugin (editable) with TensorFlow and EXTRAS; quick when already there.
install: $(PYTHON)
	$(PYTHON) -m pip install -q -e ".[$(EXTRAS)]" "$(TF_REQUIREMENT)"

test: install
	$(PYTHON) -m pytest

lint: install
	$(PYTHON) -m ruff check ig_plugin tests examples benchmarks
	$(PYTHON) -m ruff format --check ig_plugin tests examples benchmarks
	$(PYTHON) -m mypy

demo: install
	$(PYTHON) examples/image_digits.py

examples: install
	@for script in examples/*.py; do \
		echo "== $$script"; \
		$(PYTHON) $$script --output examples/output || exit 1; \
	done

# The Sphinx site, warnings (broken references included) as errors; it shows the examples'
# pictures, so they are made first when missing.
docs: install
	@ls examples/output/*.png >/dev/null 2>&1 || $(MAKE) examples
	$(PYTHON) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs built: docs/_build/html/index.html"

# Speed against alibi and the bare gradients, and peak memory; about 13 minutes. Writes
# benchmarks/results/latest.{json,rst}, which the docs' performance page includes.
benchmark: install
	$(PYTHON) benchmarks/run.py

# The whole benchmark pipeline in about a minute, written outside the repo, and one round of
# the first-explain benchmark (four fresh processes, about 25 s, printed only): CI runs them so
# they keep working. Their numbers (few repeats, small N) are not the ones to quote.
benchmark-smoke: install
	$(PYTHON) benchmarks/run.py --quick --workloads cnn,text --memory-sizes 20 \
		--output $${TMPDIR:-/tmp}/ig_plugin-benchmark-smoke/latest.json
	$(PYTHON) benchmarks/first_explain.py --repeats 1

# MLServer's alibi runtime, for the serving benchmark and its own test. Its pins (TensorFlow
# < 2.15, protobuf < 5) conflict with mlserver 1.7, so it is installed with --no-deps into a folder
# that only these two targets put on PYTHONPATH: VENV's `pip check` stays clean.
ALIBI_RUNTIME := $(abspath $(STACKS))/alibi-runtime
$(ALIBI_RUNTIME): | $(PYTHON)
	$(PYTHON) -m pip install -q --no-deps --target $(ALIBI_RUNTIME) "mlserver-alibi-explain==1.6.1"

# One served request of 1 and 32 samples on workload 1: ig_plugin's MLServer runtime against
# in-process and against the alibi runtime; about 2 minutes. Writes benchmarks/results/serving.*.
benchmark-serving: install $(ALIBI_RUNTIME)
	PYTHONPATH=$(ALIBI_RUNTIME) $(PYTHON) benchmarks/serving.py

# The alibi runtime serving ig_plugin folders, against a real server (not in CI).
test-alibi-runtime: install $(ALIBI_RUNTIME)
	PYTHONPATH=$(ALIBI_RUNTIME) $(PYTHON) -m pytest tests/deploy/test_serving_alibi_runtime.py

# The two other Keras stacks ig_plugin supports; `make test` covers TensorFlow 2.21 + Keras 3.
test-stacks: test-tf-keras test-tf2.14

# TensorFlow 2.21 with legacy Keras 2 (tf_keras), as Hugging Face TF models need, and alibi 0.9.4,
# the last Apache-2.0 release (the other stacks have the newest alibi), with transformers 4.x
# (ig_plugin[hf]) for the Hugging Face tests, which skip on the other stacks. tf-keras depends
# on the 572 MB `tensorflow` wheel; --no-deps keeps the CPU one already installed.
test-tf-keras:
	$(MAKE) install VENV=$(STACKS)/tf-keras TF_REQUIREMENT="tensorflow-cpu==2.21.*" \
		EXTRAS=dev,alibi-apache,hf
	$(STACKS)/tf-keras/bin/python -m pip install -q --no-deps "tf-keras==2.21.*"
	TF_USE_LEGACY_KERAS=1 IG_PLUGIN_EXPECT_KERAS="tf_keras 2.21" IG_PLUGIN_EXPECT_ALIBI=0.9.4 \
		IG_PLUGIN_EXPECT_TRANSFORMERS=1 $(STACKS)/tf-keras/bin/python -m pytest

# TensorFlow 2.14.1 with Keras 2.14: the newest stack alibi's own tensorflow extra allows.
test-tf2.14:
	$(MAKE) install VENV=$(STACKS)/tf2.14 TF_REQUIREMENT="tensorflow-cpu==2.14.1" EXTRAS=dev
	IG_PLUGIN_EXPECT_KERAS="keras 2.14" $(STACKS)/tf2.14/bin/python -m pytest

# Agreement with captum (GradientShap, NoiseTunnel over IntegratedGradients, the metrics
# infidelity and sensitivity_max) on one MLP built in PyTorch and in Keras: its own venv with
# TensorFlow 2.21, the CPU wheel of torch 2.13.0 (pip takes it from this machine's disk when
# pinned) and captum 0.9.0; only those test files run.
test-captum:
	$(MAKE) install VENV=$(STACKS)/captum TF_REQUIREMENT="tensorflow-cpu==2.21.*" EXTRAS=dev
	$(STACKS)/captum/bin/python -m pip install -q "torch==2.13.0" "captum==0.9.0"
	$(STACKS)/captum/bin/python -m pytest tests/parity/test_captum_agreement.py \
		tests/parity/test_captum_metrics.py

# KerasHub 0.32 language models (GPT-2, BERT) built from configs with random weights, explained
# end to end: its own venv with the full `tensorflow` wheel alone (tensorflow-text, which
# keras-hub needs, depends on it, so tensorflow-cpu would be a second copy); only the files that
# need KerasHub run (they skip on the other stacks).
test-keras-hub:
	$(MAKE) install VENV=$(STACKS)/keras-hub TF_REQUIREMENT="tensorflow==2.21.*" \
		EXTRAS=dev,keras-hub
	IG_PLUGIN_EXPECT_KERAS_HUB=1 $(STACKS)/keras-hub/bin/python -m pytest tests/text/test_keras_hub.py

# Every position of a sequence model, and a generation matrix, in one pass against one call per
# target, with peak memory; about 5 minutes. Writes benchmarks/results/sequences.{json,rst}.
benchmark-sequences: install
	$(PYTHON) benchmarks/sequences.py

# Expected Gradients against shap's GradientExplainer (benchmarks/expected_gradients.py), in
# its own venv: shap 0.49.1 is the newest release that installs beside numpy < 2 (alibi's cap)
# and TensorFlow 2.21. About 15 minutes; writes benchmarks/results/expected_gradients.{json,rst}.
benchmark-expected-gradients:
	$(MAKE) install VENV=$(STACKS)/shap TF_REQUIREMENT="tensorflow-cpu==2.21.*" EXTRAS=dev
	$(STACKS)/shap/bin/python -m pip install -q "shap==0.49.1"
	$(STACKS)/shap/bin/python benchmarks/expected_gradients.py

# ig_plugin.metrics against captum (infidelity, sensitivity_max) and Quantus (deletion and
# insertion against PixelFlipping, MuFidelity against FaithfulnessCorrelation), in its own venv:
# torch 2.13.0's CPU wheel, captum 0.9.0 and Quantus 0.6.0, which installs beside TensorFlow 2.21
# only with numpy < 2 pinned. The agreement tests with Quantus run first. Not in CI; about five
# minutes. Writes benchmarks/results/metrics.{json,rst}, which the docs' evaluation page includes.
benchmark-metrics:
	$(MAKE) install VENV=$(STACKS)/metrics TF_REQUIREMENT="tensorflow-cpu==2.21.*" EXTRAS=dev
	$(STACKS)/metrics/bin/python -m pip install -q "torch==2.13.0" "captum==0.9.0" \
		"quantus==0.6.0" "numpy<2"
	$(STACKS)/metrics/bin/python -m pytest tests/parity/test_quantus_metrics.py
	$(STACKS)/metrics/bin/python benchmarks/metrics.py

# Guided IG and Blur IG against PAIR saliency 0.2.1 (the `pair` extra) on the same CNN, N = 32,
# with peak memory by N. Not in CI; about ten minutes. Writes
# benchmarks/results/path_methods.{json,rst}, which the docs' path methods page includes.
benchmark-path-methods: install
	$(PYTHON) -m pip install -q -e ".[pair]"
	$(PYTHON) benchmarks/path_methods.py

# n_steps="auto" against the smallest fixed Gauss-Legendre n_steps that meets the same tolerance,
# on five models at 1e-2 and 1e-3 and on two wider digits MLPs (benchmarks/auto_steps.py, with
# --wider), what a small array operation of its rounds costs in numpy and in a compiled
# tf.while_loop (benchmarks/round_ops.py), and
# auto on batches it has not explained before (benchmarks/fresh_inputs.py, which reads the first's
# committed table); about 14 minutes. Not in CI. Writes
# benchmarks/results/{auto_steps,auto_steps_wider,round_ops,fresh_inputs}.{json,rst}, which
# docs/steps.rst includes.
benchmark-auto-steps: install
	$(PYTHON) benchmarks/auto_steps.py
	$(PYTHON) benchmarks/auto_steps.py --wider
	$(PYTHON) benchmarks/round_ops.py
	$(PYTHON) benchmarks/fresh_inputs.py

# internal_batch_size="auto" against fixed sizes from 16 to 4,096 on the four workloads, and the
# peak memory auto adds under a 64 MiB budget; about ten minutes, not in CI. Writes
# benchmarks/results/batch_size.{json,rst}, which the docs' performance page includes.
benchmark-batch-size: install
	$(PYTHON) benchmarks/batch_size.py

clean:
	rm -rf $(VENV) $(STACKS) build dist *.egg-info examples/output .pytest_cache .mypy_cache .ruff_cache

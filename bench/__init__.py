"""The product's benchmarks (run each as a script: `.venv/bin/python bench/NAME.py`), and the helpers they share with
the tests: the malformed and edge-case image corpora, the loader fuzzer's mutations and the cancel-storm tools."""

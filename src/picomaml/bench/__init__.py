"""Every benchmark, one module per ``picomaml bench`` subcommand: :mod:`.pretrain` (AR vs MAML
micro-batch cost, with :mod:`.steps`, :mod:`.memory` and :mod:`.pico_train`), :mod:`.meta`
(does the episode learn, on synthetic features), :mod:`.ner` (CRF and, in :mod:`.head_cache`,
cached head features) and :mod:`.tag` (``picomaml tag`` throughput).

Benchmarks are measurements, not timed tests: each writes a JSON report and prints a summary.
They take typed arguments; only :mod:`picomaml.cli.bench` sees the command line.
"""

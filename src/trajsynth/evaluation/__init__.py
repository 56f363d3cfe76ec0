"""Evaluation of models and samples: the metric suite, evaluated sets, reports, literature benchmarks."""

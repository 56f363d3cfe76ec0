"""Evaluation of models and samples: the metric suite, where evaluated sets come from, reports, literature benchmarks."""

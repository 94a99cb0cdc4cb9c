"""Searches on several processes or machines: keras-tuner's chief and workers
(`distributed`, `workers`), local worker processes (`local_workers`) and their recycling
(`recycling`)."""

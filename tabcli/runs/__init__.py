"""Run directories (``run_dir``) and the attention-score artifacts written into them (``attention``)."""

"""Fan-out benchmark suite: the ticker against naive, Node `ws` and raw-uvloop baselines."""

"""The plan's passes: each takes the stages ``plan.builder`` made and rewrites them for one plan option
(fusion, channel blocks, gLN in stages, halo edges, skip sums in stages) or builds the streaming
plan of receptive-field windows (rf_windows)."""

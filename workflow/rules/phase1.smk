# Phase 1: text-anchor discovery matrix (image effects x audio effects) and its heatmap.

PHASE1_RESULTS = []

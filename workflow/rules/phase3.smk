# Phase 3: the decoder from image-effect descriptions to audio DSP parameters.

PHASE3_RESULTS = []
